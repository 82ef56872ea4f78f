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

/// The header's doc comments are the C user's manual: every `RESOCK_*` name they mention
/// (a macro, an enumerator, or a family written `RESOCK_CLASS_*`) must exist.
#[test]
fn every_resock_name_in_a_comment_is_declared() {
    let declared: Vec<&str> = HEADER
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("#define ")
                .or_else(|| l.starts_with("RESOCK_").then_some(l))
        })
        .filter_map(|l| l.split([' ', ',', '=']).next())
        .collect();
    let mut checked = 0;
    for line in HEADER.lines().filter(|l| {
        let t = l.trim_start();
        t.starts_with('*') || t.starts_with("/*")
    }) {
        for (at, _) in line.match_indices("RESOCK_") {
            let name: String = line[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*')
                .collect();
            let ok = match name.strip_suffix('*') {
                Some(family) => declared.iter().any(|d| d.starts_with(family)),
                None => declared.contains(&name.as_str()),
            };
            assert!(
                ok,
                "resock.h mentions {name}, which it does not declare: {line}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

/// The functions of the header: the single list the version script, the man pages and
/// these tests follow.
#[path = "../build/header.rs"]
#[allow(dead_code)]
mod header;

/// Every function the header declares has a section-3 man page (curl's tests 1139/1173 do
/// the same for its options), naming it in its NAME section; resock(1) and resock(7) exist.
#[test]
fn every_exported_function_has_a_man_page() {
    let man = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let functions = header::functions(HEADER);
    assert!(functions.len() >= 40, "only {} functions", functions.len());
    for f in &functions {
        let page = man.join("man3").join(format!("{}.3", f.name));
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|_| panic!("{} has no man page ({})", f.name, page.display()));
        let target = match text.strip_prefix(".so ") {
            Some(link) => std::fs::read_to_string(man.join(link.trim())).unwrap(),
            None => text,
        };
        assert!(
            target.contains(&format!(".SH NAME\n{} \\-", f.name))
                || target.contains(&format!("{},", f.name)),
            "man page of {} does not name it",
            f.name
        );
    }
    for page in ["man1/resock.1", "man7/resock.7"] {
        assert!(man.join(page).exists(), "man/{page} is missing");
    }
}

/// abi/resock.map versions exactly the header's functions (the installed library exports
/// nothing else), under the node RESOCK_<RESOCK_ABI_VERSION - 1>.
#[test]
fn the_version_script_lists_every_function() {
    let map = include_str!("../abi/resock.map");
    for f in header::functions(HEADER) {
        assert!(
            map.contains(&format!("    {};\n", f.name)),
            "abi/resock.map lacks {}",
            f.name
        );
    }
    let node = format!("RESOCK_{} {{", header::soname_major(HEADER));
    assert!(
        map.contains(&node) && map.contains("local:\n    *;"),
        "{map}"
    );
}

#[path = "common/skip.rs"]
mod skip;

/// Every man page is valid roff: groff with all warnings on (`-ww`) says nothing.
#[test]
fn every_man_page_renders_without_groff_warnings() {
    let man = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages = Vec::new();
    for section in ["man1", "man3", "man7"] {
        for entry in std::fs::read_dir(man.join(section)).unwrap() {
            pages.push(entry.unwrap().path());
        }
    }
    for page in pages {
        let out = match std::process::Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&page)
            .output()
        {
            Ok(out) => out,
            Err(_) => {
                skip::skip("groff is not installed (apt-get install groff-base)");
                return;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
    }
}
