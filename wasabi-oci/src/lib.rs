//! OCI images of WebAssembly modules for containerd's runtime
//! `io.containerd.wasabi.v1`, built without Docker: an image-layout
//! archive that `ctr images import` (and skopeo, crane, ...) accept. This
//! is what `cargo xtask oci` writes.
//!
//! The image has two layers:
//! - a filesystem layer (a tar) holding the module at `/<file name>` and,
//!   when given, the container's grants and limits at `/wasabi.toml`; the
//!   container's root, and what an engine without layer support runs;
//! - the module itself as an `application/wasm` layer: runwasi's shims read
//!   it from containerd's content store, so the shim's compiler can compile
//!   it once per node and keep the code beside the image.
//!
//! The image's platform is `wasip1/wasm`, as WebAssembly images declare.
//!
//! ```no_run
//! let spec = wasabi_oci::ImageSpec {
//!     module: "target/programs/hello.wasm".as_ref(),
//!     name: "hello",
//!     output: "hello.tar".as_ref(),
//!     config: None,
//!     args: &[],
//!     wasm_layer: true,
//! };
//! wasabi_oci::build_image(&spec)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod testbed;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

/// What to build.
pub struct ImageSpec<'a> {
    /// The module (Go js/wasm or a WASI command). Its bytes are packaged as
    /// they are: checking them is the runtime's work, which trusts no image.
    pub module: &'a Path,
    /// The image's name, e.g. `hello` or `registry.example.com/team/app:v1`.
    pub name: &'a str,
    /// The archive to write.
    pub output: &'a Path,
    /// A `wasabi.toml` to put at the image's root.
    pub config: Option<&'a Path>,
    /// Arguments after the module's name.
    pub args: &'a [String],
    /// Add the module as an `application/wasm` layer too (containerd
    /// 1.6.25+, 1.7.7+ or 2.x: older releases cannot unpack such an image).
    pub wasm_layer: bool,
}

/// One blob of the image: its bytes and descriptor.
struct Blob {
    media_type: &'static str,
    bytes: Vec<u8>,
}

impl Blob {
    fn digest(&self) -> String {
        format!("sha256:{}", hex(&Sha256::digest(&self.bytes)))
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest(),
            "size": self.bytes.len(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The image's full reference: a name with no tag gets `:latest`.
pub fn reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Writes the image archive `spec` describes.
pub fn build_image(spec: &ImageSpec) -> anyhow::Result<PathBuf> {
    let wasm = std::fs::read(spec.module)
        .with_context(|| format!("cannot read {}", spec.module.display()))?;
    let file_name = spec
        .module
        .file_name()
        .and_then(|n| n.to_str())
        .context("the module's file name is not UTF-8")?
        .to_string();
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
    {
        bail!(
            "--name {:?}: an image name is letters, digits and . _ - / : @",
            spec.name
        );
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![(file_name.clone(), wasm.clone())];
    if let Some(config) = spec.config {
        let text =
            std::fs::read(config).with_context(|| format!("cannot read {}", config.display()))?;
        files.push(("wasabi.toml".into(), text));
    }
    let rootfs = Blob {
        media_type: "application/vnd.oci.image.layer.v1.tar",
        bytes: tar_of(&files)?,
    };
    let module_layer = Blob {
        media_type: "application/wasm",
        bytes: wasm,
    };
    let mut entrypoint = vec![format!("/{file_name}")];
    entrypoint.extend(spec.args.iter().cloned());
    // An unpacker skips layers that are not filesystems: only the tar's
    // digest is the root's.
    let mut layers = vec![rootfs.descriptor()];
    if spec.wasm_layer {
        layers.push(module_layer.descriptor());
    }
    let config = Blob {
        media_type: "application/vnd.oci.image.config.v1+json",
        bytes: serde_json::to_vec(&json!({
            "architecture": "wasm",
            "os": "wasip1",
            "config": { "Entrypoint": entrypoint },
            "rootfs": {
                "type": "layers",
                "diff_ids": [rootfs.digest()],
            },
        }))?,
    };
    let manifest = Blob {
        media_type: "application/vnd.oci.image.manifest.v1+json",
        bytes: serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor(),
            "layers": layers,
        }))?,
    };
    let reference = reference(spec.name);
    let mut manifest_descriptor = manifest.descriptor();
    manifest_descriptor["platform"] = json!({ "architecture": "wasm", "os": "wasip1" });
    manifest_descriptor["annotations"] = json!({
        "io.containerd.image.name": reference,
        "org.opencontainers.image.ref.name": reference.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("latest"),
    });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_descriptor],
    });
    let mut archive: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), serde_json::to_vec(&index)?),
    ];
    let mut blobs = vec![&rootfs, &config, &manifest];
    if spec.wasm_layer {
        blobs.push(&module_layer);
    }
    for blob in blobs {
        let path = format!("blobs/sha256/{}", &blob.digest()["sha256:".len()..]);
        if !archive.iter().any(|(p, _)| *p == path) {
            archive.push((path, blob.bytes.clone()));
        }
    }
    let bytes = tar_of(&archive)?;
    std::fs::write(spec.output, bytes)
        .with_context(|| format!("cannot write {}", spec.output.display()))?;
    Ok(spec.output.to_path_buf())
}

/// A tar archive of `files` (path, contents), reproducible: no times, no
/// owners, mode 0644.
fn tar_of(files: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, bytes) in files {
        // Parent folders first, as unpackers expect.
        let mut parent = String::new();
        for part in path
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            parent = if parent.is_empty() {
                part.to_string()
            } else {
                format!("{parent}/{part}")
            };
            if !dirs.contains(&parent) {
                dirs.push(parent.clone());
                let mut header = tar::Header::new_ustar();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_mtime(0);
                header.set_cksum();
                builder.append_data(&mut header, format!("{parent}/"), std::io::empty())?;
            }
        }
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes.as_slice())?;
    }
    Ok(builder.into_inner()?)
}
