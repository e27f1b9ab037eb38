//! The tenant a container describes: its entrypoint, arguments and
//! environment, the grants and limits of `/wasabi.toml` in its filesystem,
//! and its cgroup's memory limit.

use std::path::Path;

use anyhow::{Context, bail};
use wasabi_core::fields;
use wasabi_core::manifest::parse_tenant_config;
use wasabi_core::{TenantSpec, format_size};

/// Where a container's grants and limits are read from: its image's file,
/// or one mounted over it (a Kubernetes ConfigMap, say). Without it, the
/// tenant has what `wasabi run` gives with no flag: nothing.
pub const CONFIG_PATH: &str = "/wasabi.toml";

/// What the runtime keeps of the container's memory limit for itself: the
/// engine, the module's machine code and host buffers, about 40 MiB for a
/// 2.5 MB Go program compiled in the container (measured); the guest may
/// have the rest.
pub const RUNTIME_RESERVE: u64 = 64 << 20;

/// The tenant of a container whose entrypoint is `module` (as `args[0]`
/// named it), with the container's `args` and `envs` (`NAME=value`).
pub fn tenant_spec(module: &Path, args: &[String], envs: &[String]) -> anyhow::Result<TenantSpec> {
    let config = Path::new(CONFIG_PATH);
    let mut spec = match std::fs::symlink_metadata(config) {
        Ok(meta) if meta.is_file() => {
            let text = std::fs::read_to_string(config)
                .with_context(|| format!("cannot read {CONFIG_PATH}"))?;
            parse_tenant_config(&text, config, Path::new("/"), module)?
        }
        Ok(_) => bail!("{CONFIG_PATH} is not a regular file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TenantSpec::new("main", module),
        Err(e) => return Err(e).with_context(|| format!("cannot read {CONFIG_PATH}")),
    };
    spec.program_name = args.first().cloned();
    spec.args = args.iter().skip(1).cloned().collect();
    // The container's environment is the program's: the image's and the
    // pod's variables, after those of the file.
    for entry in envs {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        fields::env_name(name)
            .and_then(|()| fields::env_value(name, value))
            .map_err(|e| anyhow::anyhow!("the container's environment: {e}"))?;
        spec.env.retain(|(n, _)| n != name);
        spec.env.push((name.to_string(), value.to_string()));
    }
    if let Some(limit) = memory_limit() {
        let guest = guest_memory(limit);
        if spec.limits.max_memory.is_none_or(|m| m > guest) {
            log::info!(
                "the container's memory limit is {}: the guest may use {}",
                format_size(limit),
                format_size(guest)
            );
            spec.limits.max_memory = Some(guest);
        }
    }
    Ok(spec)
}

/// The guest's share of a container memory limit of `limit` bytes: all but
/// [`RUNTIME_RESERVE`], or half of a limit too small to keep that much.
pub fn guest_memory(limit: u64) -> u64 {
    if limit > 2 * RUNTIME_RESERVE {
        limit - RUNTIME_RESERVE
    } else {
        limit / 2
    }
}

/// The memory limit of the cgroup this process is in (cgroup v2's
/// `memory.max`, v1's `memory.limit_in_bytes`), if it has one.
fn memory_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut candidates = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if controllers.is_empty() {
            candidates.push(format!("/sys/fs/cgroup{path}/memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            candidates.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
        }
    }
    // Inside a cgroup namespace, or with only its own cgroup mounted, the
    // container's cgroup is the root of what it sees.
    candidates.push("/sys/fs/cgroup/memory.max".into());
    candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".into());
    for candidate in candidates {
        let Ok(text) = std::fs::read_to_string(&candidate) else {
            continue;
        };
        let text = text.trim();
        if text == "max" {
            return None;
        }
        if let Ok(bytes) = text.parse::<u64>() {
            // cgroup v1 writes "no limit" as a number near 2^63.
            return (bytes < 1 << 60).then_some(bytes);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_gets_all_but_the_reserve() {
        assert_eq!(guest_memory(512 << 20), 448 << 20);
        assert_eq!(guest_memory(192 << 20), 128 << 20);
        assert_eq!(guest_memory(128 << 20), 64 << 20);
        assert_eq!(guest_memory(16 << 20), 8 << 20);
    }
}
