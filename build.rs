//! Generates include/resock.h from src/ffi with cbindgen (polished into C89-clean C by
//! build/header.rs), rewriting it only when its content changed, so the committed header
//! is always the one this source produces (CI fails on a `git diff` of include/, abi/ and
//! man/). From the header's function list it writes the linker version script
//! (abi/resock.map) and the section-3 man pages (man/man3), and it gives the shared library
//! its soname.

#[path = "build/header.rs"]
mod header;
#[path = "build/man.rs"]
mod man;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    // Tests compile C with the same compiler target as the crate.
    println!(
        "cargo:rustc-env=RESOCK_BUILD_TARGET={}",
        env::var("TARGET").unwrap_or_default()
    );

    let text = header::polish(&generate_header(&dir));
    write_if_changed(&dir.join("include").join("resock.h"), &text);
    let functions = header::functions(&text);

    // rustc hands the linker its own (unversioned) version script first, and the first one
    // wins, so the versioned library is relinked from libresock.a with abi/resock.map by
    // scripts/install.sh. The soname needs no script: `cargo build --release` sets it.
    // Both follow RESOCK_ABI_VERSION (header::soname_major).
    let major = header::soname_major(&text);
    write_if_changed(
        &dir.join("abi").join("resock.map"),
        &header::version_script(&functions, major),
    );
    let soname = format!("libresock.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    link_soname_in_target_dir(&soname);

    let version = env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let man3 = dir.join("man").join("man3");
    let pages = man::section3(&functions, &version);
    for (file, page) in &pages {
        write_if_changed(&man3.join(file), page);
    }
    // A function removed from the header takes its generated page with it.
    for entry in fs::read_dir(&man3).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let generated = fs::read_to_string(entry.path())
            .is_ok_and(|text| text.starts_with(man::GENERATED_MARK));
        if generated && !pages.iter().any(|(file, _)| *file == name) {
            let _ = fs::remove_file(entry.path());
        }
    }

    #[cfg(feature = "bench")]
    compile_seed_loop(&dir);
}

/// cbindgen's rendering of src/ffi, with the version macros from Cargo.toml.
fn generate_header(dir: &Path) -> String {
    let mut config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let version = |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).unwrap_or_default();
    config.after_includes = Some(format!(
        "\n/* The version of the library this header describes (compare resock_version()). */\n\
         #define RESOCK_VERSION_MAJOR {}\n#define RESOCK_VERSION_MINOR {}\n#define RESOCK_VERSION_PATCH {}\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
    ));
    match cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            let mut out = Vec::new();
            bindings.write(&mut out);
            String::from_utf8(out).expect("cbindgen writes UTF-8")
        }
        Err(e) => panic!("cbindgen could not generate include/resock.h: {e}"),
    }
}

/// A program linked with `-Ltarget/release -lresock` records the soname as what it needs,
/// so target/release/libresock.so.N must exist beside libresock.so: a symlink, made here
/// (before the link it points to exists), in the profile directory OUT_DIR is under.
fn link_soname_in_target_dir(soname: &str) {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<package>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    let link = profile_dir.join(soname);
    if fs::read_link(&link).is_err() {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("libresock.so", &link)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
    }
}

/// Writes `text` unless the file already holds it (an unchanged mtime rebuilds nothing).
fn write_if_changed(path: &Path, text: &str) {
    if fs::read(path).ok().as_deref() != Some(text.as_bytes()) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create the output directory");
        }
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// The seed's C loop, the baseline of `cargo bench --bench io` (feature `bench`): -O2,
/// linked into bench targets only.
#[cfg(feature = "bench")]
fn compile_seed_loop(dir: &Path) {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = dir.join("benches").join("seed_loop.c");
    println!("cargo:rerun-if-changed={}", src.display());
    cc::Build::new()
        .file(&src)
        .opt_level(2)
        .cargo_metadata(false)
        .compile("seed_loop");
    println!(
        "cargo:rustc-link-arg-benches={}",
        out.join("libseed_loop.a").display()
    );
}
