//! `containerd-shim-wasabi-v1`: the containerd shim that runs WebAssembly
//! containers with Wasabi, as the runtime `io.containerd.wasabi.v1`.
//!
//! It is built on runwasi's `containerd-shim-wasm`: containerd talks to
//! the shim, youki's `libcontainer` makes each container (namespaces, the
//! cgroup with the pod's limits, the image's root), and inside it this
//! crate runs the image's `.wasm` entrypoint as one Wasabi tenant, under
//! the same deny-by-default policy as `wasabi run`. See
//! `docs/kubernetes.md` for the whole story: images, grants, limits and
//! installing it on a node.

mod compiler;
mod container;
mod node;
mod sandbox;

use containerd_shim_wasm::shim::{Cli, Config, Shim, Version};

/// The shim: its name makes containerd's runtime `io.containerd.wasabi.v1`.
struct WasabiShim;

impl Shim for WasabiShim {
    type Sandbox = sandbox::WasabiSandbox;

    fn name() -> &'static str {
        "wasabi"
    }

    fn version() -> Version {
        containerd_shim_wasm::shim::version!()
    }

    async fn compiler() -> Option<impl containerd_shim_wasm::shim::Compiler> {
        compiler::WasabiCompiler::new()
    }
}

fn main() {
    // Before anything forks: every container is a fork of this process
    // whose root becomes the image's, out of sight of the node's files,
    // so the key that proves precompiled code ours is read now.
    node::load_key();
    WasabiShim::run(Config::default());
}
