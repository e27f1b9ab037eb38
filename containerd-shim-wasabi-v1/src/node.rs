//! What the shim takes from the node before any container exists.

use std::path::PathBuf;
use std::sync::OnceLock;

use wasabi_core::seal::{InstallKey, KEY_FILE_NAME};

/// The node's installation key, or why there is none.
static KEY: OnceLock<Result<InstallKey, String>> = OnceLock::new();

/// Where the shim keeps its state on the node: `$WASABI_HOME` (set in
/// containerd's environment), else `/var/lib/wasabi`.
pub fn home() -> PathBuf {
    std::env::var_os("WASABI_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/wasabi"))
}

/// Reads the node's installation key (creating it on first use) into this
/// process, so that every container forked from it has it.
pub fn load_key() {
    KEY.get_or_init(|| {
        let path = home().join(KEY_FILE_NAME);
        InstallKey::load_or_create(&path).map_err(|e| e.to_string())
    });
}

/// The node's installation key, which seals the code the shim's compiler
/// puts in containerd's content store and proves it when a container loads
/// it.
pub fn key() -> Result<InstallKey, String> {
    match KEY.get() {
        Some(result) => result.clone(),
        None => Err("the node's key was not read before the container started".into()),
    }
}
