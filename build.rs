//! Generates include/resock.h from src/ffi with cbindgen, rewriting it only when its content
//! changed, so the committed header is always the one this source produces (CI fails on a
//! `git diff` of include/).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    // Tests compile C with the same compiler target as the crate.
    println!(
        "cargo:rustc-env=RESOCK_BUILD_TARGET={}",
        env::var("TARGET").unwrap_or_default()
    );

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
    let header = match cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            let mut out = Vec::new();
            bindings.write(&mut out);
            out
        }
        Err(e) => panic!("cbindgen could not generate include/resock.h: {e}"),
    };
    compile_seed_loop(&dir);

    let path = dir.join("include").join("resock.h");
    if fs::read(&path).ok().as_deref() != Some(&header[..]) {
        fs::create_dir_all(dir.join("include")).expect("create include/");
        fs::write(&path, header).expect("write include/resock.h");
    }
}

/// The seed's C loop, the baseline of the benches: -O2, linked into bench targets only.
fn compile_seed_loop(dir: &std::path::Path) {
    let src = dir.join("benches").join("seed_loop.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
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
