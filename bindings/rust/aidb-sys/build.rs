//! Finds libaidb for linking:
//! - feature `bundled`: builds libaidb.a from the repository's sources
//!   ($AIDB_SOURCE_DIR, else three directories up: the CMake project at the
//!   repository root) with the `cmake` crate, links it statically, and links
//!   its dependencies (Cap'n Proto/kj, simdjson, ISA-L) found with pkg-config,
//!   plus the C++ runtime;
//! - else AIDB_LIB_DIR (a directory holding libaidb.so or libaidb.a) if set,
//! - else pkg-config (`aidb.pc`; set PKG_CONFIG_PATH for a non-system prefix).
//!
//! With the `dlopen` feature nothing is linked.
use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=AIDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=AIDB_STATIC");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let dlopen = env::var_os("CARGO_FEATURE_DLOPEN").is_some();
    let bundled = env::var_os("CARGO_FEATURE_BUNDLED").is_some();
    if dlopen && bundled {
        panic!("aidb-sys: the `bundled` and `dlopen` features exclude each other");
    }
    if dlopen {
        return;
    }
    if bundled {
        #[cfg(feature = "bundled")]
        bundled::build();
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
             the `bundled` feature (from source) or the `dlopen` feature."
        );
    }
}

#[cfg(feature = "bundled")]
mod bundled {
    use std::env;
    use std::path::PathBuf;

    pub fn build() {
        println!("cargo:rerun-if-env-changed=AIDB_SOURCE_DIR");
        let src = match env::var_os("AIDB_SOURCE_DIR") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("../../.."),
        };
        let src = src
            .canonicalize()
            .unwrap_or_else(|e| panic!("aidb-sys: libaidb's sources not found at {} ({e})", src.display()));
        if !src.join("include/aidb.h.in").is_file() || !src.join("CMakeLists.txt").is_file() {
            panic!(
                "aidb-sys (bundled): {} is not AIDB's source tree (no CMakeLists.txt and \
                 include/aidb.h.in); set AIDB_SOURCE_DIR",
                src.display()
            );
        }
        for part in ["CMakeLists.txt", "cmake", "include", "src", "pkgconfig"] {
            println!("cargo:rerun-if-changed={}", src.join(part).display());
        }
        // Only the static library: no tests, benchmarks or daemon. Always
        // optimised (a debug libaidb makes debug-profile tests slow).
        let dst = cmake::Config::new(&src)
            .profile("Release")
            .define("AIDB_BUILD_TESTS", "OFF")
            .define("AIDB_BUILD_BENCH", "OFF")
            .define("AIDB_BUILD_SERVER", "OFF")
            .build_target("aidb_static")
            .build();
        println!("cargo:rustc-link-search=native={}", dst.join("build/src").display());
        println!("cargo:rustc-link-lib=static=aidb");
        // libaidb.a's dependencies, as CMake finds them (CMakeLists.txt),
        // linked from the system. capnp.pc brings kj.
        for lib in ["capnp", "simdjson", "libisal"] {
            if let Err(e) = pkg_config::Config::new().cargo_metadata(true).probe(lib) {
                panic!("aidb-sys (bundled): {lib} not found with pkg-config ({e})");
            }
        }
        println!("cargo:rustc-link-lib=stdc++");
        println!("cargo:rustc-link-lib=pthread");
        println!("cargo:rustc-link-lib=m");
        // For the layout test and users: the header of the build.
        println!("cargo:include={}", src.join("include").display());
    }
}
