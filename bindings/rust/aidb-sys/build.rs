//! Finds libaidb for linking: AIDB_LIB_DIR (a directory holding libaidb.so or
//! libaidb.a) if set, else pkg-config (`aidb.pc`; set PKG_CONFIG_PATH for a
//! non-system prefix). With the `dlopen` feature nothing is linked.
use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=AIDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=AIDB_STATIC");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if env::var_os("CARGO_FEATURE_DLOPEN").is_some() {
        return;
    }
    if let Some(dir) = env::var_os("AIDB_LIB_DIR") {
        let dir = Path::new(&dir);
        println!("cargo:rustc-link-search=native={}", dir.display());
        if env::var_os("AIDB_STATIC").is_some() {
            println!("cargo:rustc-link-lib=static=aidb");
            // libaidb.a is C++; its dependencies come from pkg-config --static.
            for lib in ["capnp", "kj", "simdjson", "isal", "stdc++", "pthread", "m"] {
                println!("cargo:rustc-link-lib={lib}");
            }
        } else {
            println!("cargo:rustc-link-lib=dylib=aidb");
        }
        return;
    }
    let statik = env::var_os("AIDB_STATIC").is_some();
    // The crate is versioned with the library: at least this version.
    let version = env::var("CARGO_PKG_VERSION").unwrap();
    if let Err(e) = pkg_config::Config::new().atleast_version(&version).statik(statik).probe("aidb") {
        panic!(
            "aidb-sys: libaidb not found ({e}).\n\
             Install AIDB and point PKG_CONFIG_PATH at its lib/pkgconfig, set \
             AIDB_LIB_DIR to the directory holding libaidb.so, or build with \
             the `dlopen` feature."
        );
    }
}
