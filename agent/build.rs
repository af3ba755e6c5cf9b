//! Embeds `presets/*.toml` into the agent, so the one-board tool works without the repository,
//! exports the executables' `sched_yield` (see `src/engines/numpy/spin_yield.rs`), and sets the
//! build time the agent's clock floor starts from (`src/daemon/clock.rs`).

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    // The agent's clock floor (src/daemon/clock.rs): SOURCE_DATE_EPOCH for reproducible
    // builds, else the time this script runs.
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let built = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=FLEETCAL_BUILD_EPOCH={built}");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        // Binaries, tests, examples and benches of this package: the dynamic linker then binds
        // OpenBLAS's sched_yield calls to the executable's definition.
        println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=sched_yield");
    }
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../presets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut out = String::from(
        "/// Built-in presets: (file name, TOML text).\npub static BUILTIN: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        let path = f.canonicalize().unwrap();
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_presets.rs");
    std::fs::write(dest, out).unwrap();
}
