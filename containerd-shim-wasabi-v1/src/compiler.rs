//! runwasi's compiler hook: the first container of an image compiles its
//! WebAssembly layer with Cranelift, sealed with the node's key, and
//! containerd keeps the result in its content store beside the image; every
//! later container of the image, on this node, loads that code and compiles
//! nothing.

use std::path::Path;
use std::sync::Arc;

use containerd_shim_wasm::sandbox::context::WasmLayer;
use containerd_shim_wasm::shim::Compiler;
use wasabi_core::Runtime;

/// Compiles images' WebAssembly layers in the shim (on the node, outside
/// any container).
pub struct WasabiCompiler {
    runtime: Arc<Runtime>,
    /// The Wasabi build, engine and key the code is for; part of the label
    /// containerd files it under, so code from another build or key is
    /// never offered.
    identity: String,
}

impl WasabiCompiler {
    /// The compiler, or `None` (containers then compile their module
    /// themselves) when the node's key or the engine is not to be had.
    pub fn new() -> Option<WasabiCompiler> {
        let made = (|| -> anyhow::Result<WasabiCompiler> {
            let key = crate::node::key().map_err(anyhow::Error::msg)?;
            let runtime = Runtime::new(crate::sandbox::runtime_config(key))
                .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?;
            let identity = runtime.code_identity()?;
            Ok(WasabiCompiler {
                runtime: Arc::new(runtime),
                identity,
            })
        })();
        match made {
            Ok(compiler) => Some(compiler),
            Err(e) => {
                log::warn!("precompiling is off, each container compiles its module: {e:#}");
                None
            }
        }
    }
}

impl Compiler for WasabiCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        self.identity.clone()
    }

    async fn compile(&self, layers: &[WasmLayer]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        let mut compiled = Vec::with_capacity(layers.len());
        for layer in layers {
            if layer.precompiled || !layer.layer.starts_with(b"\0asm") {
                compiled.push(None);
                continue;
            }
            let runtime = Arc::clone(&self.runtime);
            let wasm = layer.layer.clone();
            let name = format!("layer {}", layer.config.digest());
            // Compiling takes a core for a while: off the shim's async threads.
            let sealed = tokio::task::spawn_blocking(move || {
                runtime
                    .compile_bytes(Path::new(&name), wasm)
                    .map_err(anyhow::Error::from)
            })
            .await??;
            compiled.push(Some(sealed));
        }
        Ok(compiled)
    }
}
