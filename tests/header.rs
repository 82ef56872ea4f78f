//! The committed header against the crate: version macros match Cargo.toml, and every
//! declaration a C user sees carries its documentation.

const HEADER: &str = include_str!("../include/resock.h");

fn define(name: &str) -> String {
    HEADER
        .lines()
        .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
        .unwrap_or_else(|| panic!("resock.h lacks {name}"))
        .trim()
        .to_string()
}

#[test]
fn version_macros_match_cargo_toml() {
    assert_eq!(
        define("RESOCK_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        define("RESOCK_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        define("RESOCK_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert!(define("RESOCK_ABI_VERSION").parse::<u32>().unwrap() >= 1);
}

#[test]
fn the_runtime_version_matches_the_package() {
    unsafe extern "C" {
        fn resock_version() -> *const libc::c_char;
    }
    use resock as _;
    let v = unsafe { std::ffi::CStr::from_ptr(resock_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_declaration_is_documented() {
    let lines: Vec<&str> = HEADER.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let declares = (line.starts_with("#define RESOCK_") && !line.contains("RESOCK_H"))
            || line.starts_with("typedef ")
            || (line.contains('(') && line.ends_with(");") && !line.starts_with(' '))
            || (line.contains('(') && line.ends_with(',') && !line.starts_with(' '));
        if !declares || line.starts_with("#define RESOCK_VERSION_") {
            continue;
        }
        let prev = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap();
        assert!(
            prev.trim_end().ends_with("*/"),
            "undocumented in resock.h: {line}"
        );
        checked += 1;
    }
    // The I/O calls, their options, the error calls and the version calls at least.
    assert!(checked >= 19, "only {checked} declarations found");
}

#[test]
fn the_seed_signatures_are_exact() {
    for decl in [
        "ssize_t readn_sync(int fd, void *buffer, size_t n);",
        "ssize_t writen_sync(int fd, const void *buffer, size_t n);",
        "ssize_t writev_sync(int fd, const struct iovec *iov, int iovcnt);",
        "ssize_t readline_sync(int fd, void *buffer, size_t maxlen);",
        "void resock_io_opts_init(struct resock_io_opts *opts);",
        "const char *resock_explain(int errnum);",
        "int resock_classify(int errnum);",
        "int resock_should_reconnect(int errnum);",
    ] {
        assert!(HEADER.contains(decl), "resock.h lacks {decl}");
    }
}
