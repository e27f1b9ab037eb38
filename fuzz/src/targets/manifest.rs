//! The `wasabi serve` manifest parser: any text gives tenants or a located
//! error, never a panic; the paths it yields are absolute.

use std::path::Path;

/// The target.
pub const TARGET: crate::Target = crate::Target {
    name: "manifest",
    about: "the serve manifest: TOML, defaults, every field's checks",
    dictionary: &[
        b"[[tenant]]\n",
        b"[defaults]\n",
        b"name = \"a\"\n",
        b"module = \"m.wasm\"\n",
        b"dirs = [\"./d:/d:ro\"]\n",
        b"cwd = \"/d\"\n",
        b"listen = { \"127.0.0.1:80\" = \"127.0.0.1:9000\" }\n",
        b"allow-connect = [\"10.0.0.0/8\"]\n",
        b"max-memory = \"64MiB\"\n",
        b"max-cpu = 0.5\n",
        b"max-connections = 0\n",
        b"restart = \"always\"\n",
        b"allow-precompiled = true\n",
        b"env = { A = \"b\" }\n",
        b"args = [\"x\"]\n",
        b"\"",
        b"=",
        b"\n",
        b"..",
    ],
    run,
};

fn run(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    // The manifest's folder holds `m.wasm` and a directory `d`.
    let base = std::env::temp_dir().join(format!("wasabi-fuzz-manifest-{}", std::process::id()));
    if !base.join("d").is_dir() {
        let _ = std::fs::create_dir_all(base.join("d"));
        let _ = std::fs::write(base.join("m.wasm"), b"\0asm\x01\0\0\0");
    }
    if let Ok(manifest) = wasabi_core::manifest::parse_manifest(&text, Path::new("m.toml"), &base) {
        for spec in manifest.tenants {
            assert!(spec.module.is_absolute(), "{:?}", spec.module);
            for mount in &spec.fs.mounts {
                assert!(mount.host.is_absolute(), "{:?}", mount.host);
            }
        }
    }
}
