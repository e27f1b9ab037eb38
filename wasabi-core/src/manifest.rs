//! The `wasabi serve` manifest: a TOML file describing every tenant, read
//! with serde. Every error names the file, the line and the field, and a
//! manifest with any error starts nothing.
//!
//! ```toml
//! [router]                        # optional: one host listener for many tenants
//! listen = "0.0.0.0:8080"         # requests go to the tenant whose `routes` match
//! tls-cert = "cert.pem"           # optional: the router serves HTTPS
//! tls-key = "key.pem"
//!
//! [defaults]                      # optional; any tenant field but `name`
//! max-memory = "128MiB"
//!
//! [[tenant]]
//! name = "blog"                   # unique: [A-Za-z0-9._-], at most 64 characters
//! module = "blog.wasm"            # relative to the manifest's folder; Go js/wasm or a WASI command
//! allow-precompiled = false       # true: `module` may be a .cwasm `wasabi compile` made here
//! args = ["-v"]
//! env = { GREETING = "hi" }
//! listen = { "127.0.0.1:8080" = "127.0.0.1:9001" }   # guest address = host address
//! allow-connect = ["127.0.0.1:5432", "api.example.com:443"]
//! ca-cert = ["internal-ca.pem"]   # HTTPS (fetch) also trusts these CAs, besides the system's
//! dirs = ["./content:/srv:ro", "./uploads:/data"]  # HOST[:GUEST][:ro]; nothing else is visible
//! cwd = "/data"                   # working directory; default: the first of `dirs`
//! max-memory = "64MiB"
//! max-connections = 256
//! max-cpu = 0.5                   # a fraction of one core
//! max-js-heap = "64MiB"           # host memory for JS objects (within max-memory)
//! max-open-files = 1024
//! max-js-refs = 4194304           # references to JS values held at once
//! max-timers = 65536              # timers pending at once
//! http-max-header = "64KiB"       # the host's HTTP server (wasabi.Serve): 431 past it
//! http-max-body = "32MiB"         # 413 past it
//! http-header-timeout = "10s"     # 408 for a slower request head; also the keep-alive idle time
//! http-idle-timeout = "120s"      # a connection moving no bytes, with no request, is closed
//! http-max-requests = 1024        # in progress at once; 503 with Retry-After past it
//! tls-cert = "cert.pem"           # serve HTTPS (wasabi.Serve) with this chain...
//! tls-key = "key.pem"             # ...and key; both relative to the manifest's folder
//! routes = ["blog.example.com", "example.com/blog"]  # [router] requests by Host[/path prefix]
//! restart = "on-failure"          # never | on-failure | always
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use wasabi_gojs::{AddressRule, MountSpec, NetPolicy, SandboxSpec};
use wasabi_limits::{Advice, Cap, Grant};

use crate::fields;
use crate::module::PrecompiledCode;
use crate::tenant::{RestartPolicy, TenantSpec};
use wasabi_limits::TenantLimits;

/// A manifest error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// 1-based line of the error (0 when it concerns the whole file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    router: Option<Spanned<RawRouter>>,
    #[serde(default)]
    defaults: Option<Spanned<RawTenant>>,
    #[serde(default)]
    tenant: Vec<Spanned<RawTenant>>,
}

/// The `[router]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRouter {
    listen: Spanned<String>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
}

/// A manifest: its tenants, and the router in front of them if it has one.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Every tenant, in the manifest's order.
    pub tenants: Vec<TenantSpec>,
    /// The `[router]`: one host listener routing to tenants by their
    /// `routes`.
    pub router: Option<RouterSpec>,
}

/// The router a manifest asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSpec {
    /// The host address it listens on.
    pub listen: SocketAddr,
    /// Serve HTTPS with this identity; plain HTTP when `None`.
    pub tls: Option<wasabi_gojs::ServerTls>,
}

impl Manifest {
    /// Every tenant's routes, each with the tenant it goes to.
    pub fn routes(&self) -> Vec<(wasabi_gojs::Route, String)> {
        self.tenants
            .iter()
            .flat_map(|t| t.routes.iter().map(|r| (r.clone(), t.name.clone())))
            .collect()
    }
}

/// A size as a string (`"64MiB"`) or a number of bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a size such as \"64MiB\" or a whole number of bytes"
)]
enum RawSize {
    Text(String),
    Bytes(u64),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTenant {
    name: Option<Spanned<String>>,
    module: Option<Spanned<String>>,
    allow_precompiled: Option<bool>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    listen: Option<Spanned<BTreeMap<String, String>>>,
    allow_connect: Option<Spanned<Vec<String>>>,
    ca_cert: Option<Spanned<Vec<String>>>,
    dirs: Option<Spanned<Vec<String>>>,
    cwd: Option<Spanned<String>>,
    max_memory: Option<Spanned<RawSize>>,
    max_connections: Option<Spanned<usize>>,
    max_cpu: Option<Spanned<f64>>,
    max_js_heap: Option<Spanned<RawSize>>,
    max_open_files: Option<Spanned<usize>>,
    max_js_refs: Option<Spanned<usize>>,
    max_timers: Option<Spanned<usize>>,
    http_max_header: Option<Spanned<RawSize>>,
    http_max_body: Option<Spanned<RawSize>>,
    http_header_timeout: Option<Spanned<String>>,
    http_idle_timeout: Option<Spanned<String>>,
    http_max_requests: Option<Spanned<usize>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    routes: Option<Spanned<Vec<String>>>,
    restart: Option<Spanned<RestartPolicy>>,
}

impl RawTenant {
    /// Fills every field this tenant leaves out from `defaults`.
    fn with_defaults(self, defaults: &RawTenant) -> RawTenant {
        RawTenant {
            name: self.name,
            module: self.module.or_else(|| defaults.module.clone()),
            allow_precompiled: self.allow_precompiled.or(defaults.allow_precompiled),
            args: self.args.or_else(|| defaults.args.clone()),
            env: self.env.or_else(|| defaults.env.clone()),
            listen: self.listen.or_else(|| defaults.listen.clone()),
            allow_connect: self
                .allow_connect
                .or_else(|| defaults.allow_connect.clone()),
            ca_cert: self.ca_cert.or_else(|| defaults.ca_cert.clone()),
            dirs: self.dirs.or_else(|| defaults.dirs.clone()),
            cwd: self.cwd.or_else(|| defaults.cwd.clone()),
            max_memory: self.max_memory.or_else(|| defaults.max_memory.clone()),
            max_connections: self
                .max_connections
                .or_else(|| defaults.max_connections.clone()),
            max_cpu: self.max_cpu.or_else(|| defaults.max_cpu.clone()),
            max_js_heap: self.max_js_heap.or_else(|| defaults.max_js_heap.clone()),
            max_open_files: self
                .max_open_files
                .or_else(|| defaults.max_open_files.clone()),
            max_js_refs: self.max_js_refs.or_else(|| defaults.max_js_refs.clone()),
            max_timers: self.max_timers.or_else(|| defaults.max_timers.clone()),
            http_max_header: self
                .http_max_header
                .or_else(|| defaults.http_max_header.clone()),
            http_max_body: self
                .http_max_body
                .or_else(|| defaults.http_max_body.clone()),
            http_header_timeout: self
                .http_header_timeout
                .or_else(|| defaults.http_header_timeout.clone()),
            http_idle_timeout: self
                .http_idle_timeout
                .or_else(|| defaults.http_idle_timeout.clone()),
            http_max_requests: self
                .http_max_requests
                .or_else(|| defaults.http_max_requests.clone()),
            tls_cert: self.tls_cert.or_else(|| defaults.tls_cert.clone()),
            tls_key: self.tls_key.or_else(|| defaults.tls_key.clone()),
            routes: self.routes.or_else(|| defaults.routes.clone()),
            restart: self.restart.or_else(|| defaults.restart.clone()),
        }
    }
}

impl<'de> Deserialize<'de> for RestartPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RestartPolicy, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "never" => Ok(RestartPolicy::Never),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            other => Err(serde::de::Error::custom(format!(
                "unknown restart policy `{other}`: expected never, on-failure or always"
            ))),
        }
    }
}

/// An error about the whole manifest file (no line).
fn file_error(path: &Path, message: String) -> ManifestError {
    ManifestError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message,
    }
}

/// Reads and checks the manifest at `path`.
pub fn load_manifest(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("cannot read the manifest: {e}")))?;
    // Every path in the manifest is relative to the manifest's own folder,
    // made absolute here: a bare `m.toml` has the parent "", which must
    // never let a relative mount be opened against `/` or anywhere else.
    let absolute = std::path::absolute(path)
        .map_err(|e| file_error(path, format!("cannot locate the manifest's folder: {e}")))?;
    let base = absolute.parent().unwrap_or(Path::new("/"));
    parse_manifest(&text, path, base)
}

/// Parses manifest `text` (named `path` in errors), resolving module and
/// directory paths against `base` (made absolute first, against the current
/// directory, if it is not).
pub fn parse_manifest(text: &str, path: &Path, base: &Path) -> Result<Manifest, ManifestError> {
    let base = &std::path::absolute(base)
        .map_err(|e| file_error(path, format!("cannot locate the manifest's folder: {e}")))?;
    let at = |span: Range<usize>, message: String| located(text, path, span, message);
    let raw: RawManifest = toml::from_str(text).map_err(|e| toml_error(&at, e))?;
    build_manifest(raw, text, path, base, ModuleCheck::OnDisk)
}

/// Whether a tenant's module must be a file beside the manifest.
#[derive(PartialEq)]
enum ModuleCheck {
    /// A manifest's: it must.
    OnDisk,
    /// A container's: the shim has it already, possibly from an image
    /// layer that is no file.
    InImage,
}

/// A TOML syntax or type error, located.
fn toml_error(
    at: &impl Fn(Range<usize>, String) -> ManifestError,
    e: toml::de::Error,
) -> ManifestError {
    let message = e.message().trim_end().to_string();
    match e.span() {
        Some(span) => at(span, message),
        None => at(0..0, message),
    }
}

/// Fields of a container's configuration that the container itself sets.
const CONTAINER_FIELDS: &str = "`name`, `module`, `args`, `routes` and `restart` come from the container (its image's entrypoint and arguments; containerd restarts it), not from this file";

/// Parses the configuration of the one tenant a container runs (what
/// `containerd-shim-wasabi-v1` reads from `/wasabi.toml` in the container):
/// the fields of a manifest's `[[tenant]]` table, at the top level of the
/// file, checked by the same rules. `module` is the container's entrypoint;
/// paths are resolved against `base`.
///
/// ```
/// # use std::path::Path;
/// let text = "listen = { \"0.0.0.0:8080\" = \"0.0.0.0:8080\" }\nmax-memory = \"64MiB\"\n";
/// # let dir = std::env::temp_dir().join(format!("wasabi-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let module = dir.join("app.wasm");
/// # std::fs::write(&module, b"\0asm").unwrap();
/// let tenant = wasabi_core::manifest::parse_tenant_config(
///     text, Path::new("/wasabi.toml"), &dir, &module)?;
/// assert_eq!(tenant.limits.max_memory, Some(64 << 20));
/// # Ok::<(), wasabi_core::ManifestError>(())
/// ```
pub fn parse_tenant_config(
    text: &str,
    path: &Path,
    base: &Path,
    module: &Path,
) -> Result<TenantSpec, ManifestError> {
    let at = |span: Range<usize>, message: String| located(text, path, span, message);
    let base = &std::path::absolute(base).map_err(|e| {
        file_error(
            path,
            format!("cannot locate the configuration's folder: {e}"),
        )
    })?;
    let mut raw: RawTenant = toml::from_str(text).map_err(|e| toml_error(&at, e))?;
    let set_by_container = raw
        .name
        .as_ref()
        .map(|n| n.span())
        .or(raw.module.as_ref().map(|m| m.span()))
        .or(raw.routes.as_ref().map(|r| r.span()))
        .or(raw.restart.as_ref().map(|r| r.span()))
        .or(raw.args.as_ref().map(|_| 0..0));
    if let Some(span) = set_by_container {
        return Err(at(span, CONTAINER_FIELDS.into()));
    }
    let whole = 0..text.len();
    raw.name = Some(Spanned::new(whole.clone(), "main".into()));
    raw.module = Some(Spanned::new(
        whole.clone(),
        module.to_string_lossy().into_owned(),
    ));
    let manifest = RawManifest {
        router: None,
        defaults: None,
        tenant: vec![Spanned::new(whole, raw)],
    };
    let mut built = build_manifest(manifest, text, path, base, ModuleCheck::InImage)?;
    Ok(built.tenants.remove(0))
}

/// Checks a parsed manifest and builds its tenants.
fn build_manifest(
    raw: RawManifest,
    text: &str,
    path: &Path,
    base: &Path,
    module_check: ModuleCheck,
) -> Result<Manifest, ManifestError> {
    let at = |span: Range<usize>, message: String| located(text, path, span, message);
    let defaults = match raw.defaults {
        Some(d) => {
            if let Some(name) = &d.get_ref().name {
                return Err(at(
                    name.span(),
                    "`name` cannot have a default: every tenant names itself".into(),
                ));
            }
            d.into_inner()
        }
        None => RawTenant::default(),
    };
    if raw.tenant.is_empty() {
        return Err(at(
            0..0,
            "the manifest has no tenants: add a [[tenant]] table".into(),
        ));
    }
    let router = match &raw.router {
        None => None,
        Some(r) => {
            let r = r.get_ref();
            let listen = r.listen.get_ref().parse::<SocketAddr>().map_err(|_| {
                at(
                    r.listen.span(),
                    format!("router: listen: `{}` is not IP:PORT", r.listen.get_ref()),
                )
            })?;
            let tls = tls_pair(&r.tls_cert, &r.tls_key, base)
                .map_err(|(span, e)| at(span, format!("router: {e}")))?;
            Some(RouterSpec { listen, tls })
        }
    };
    let mut routes_seen: BTreeMap<String, String> = BTreeMap::new();
    let mut specs: Vec<TenantSpec> = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut host_ports: Vec<(SocketAddr, String, usize)> = Vec::new();
    for spanned in raw.tenant {
        let tenant_span = spanned.span();
        let tenant = spanned.into_inner().with_defaults(&defaults);
        let Some(name) = tenant.name else {
            return Err(at(tenant_span, "this tenant has no `name`".into()));
        };
        let name_span = name.span();
        let name = name.into_inner();
        fields::tenant_name(&name).map_err(|e| at(name_span.clone(), e))?;
        let (line, _) = line_column(text, name_span.start);
        if let Some(first) = names.insert(name.clone(), line) {
            return Err(at(
                name_span,
                format!("duplicate tenant name `{name}` (first used on line {first})"),
            ));
        }
        let Some(module) = tenant.module else {
            return Err(at(tenant_span, format!("tenant `{name}` has no `module`")));
        };
        let module_path = base.join(module.get_ref());
        if module_check == ModuleCheck::OnDisk && !module_path.is_file() {
            return Err(at(
                module.span(),
                format!(
                    "tenant `{name}`: module `{}` not found (looked for {})",
                    module.get_ref(),
                    module_path.display()
                ),
            ));
        }
        let mut net = NetPolicy::deny_all();
        if let Some(listen) = &tenant.listen {
            for (guest, host) in listen.get_ref() {
                let (guest, host) = fields::listen_mapping(guest, host)
                    .map_err(|e| at(listen.span(), format!("tenant `{name}`: listen: {e}")))?;
                let (line, _) = line_column(text, listen.span().start);
                if let Some((_, other, other_line)) =
                    host_ports.iter().find(|(h, _, _)| ports_clash(*h, host))
                {
                    return Err(at(
                        listen.span(),
                        format!(
                            "tenants `{other}` (line {other_line}) and `{name}` both listen on host address {host}"
                        ),
                    ));
                }
                host_ports.push((host, name.clone(), line));
                net.map_listen(guest, host);
            }
        }
        if let Some(rules) = &tenant.allow_connect {
            for rule in rules.get_ref() {
                let rule: AddressRule = rule.parse().map_err(|e| {
                    at(rules.span(), format!("tenant `{name}`: allow-connect: {e}"))
                })?;
                net.allow_connect(rule);
            }
        }
        let mut fs = SandboxSpec::default();
        if let Some(dirs) = &tenant.dirs {
            for dir in dirs.get_ref() {
                let mut mount: MountSpec = dir
                    .parse()
                    .map_err(|e| at(dirs.span(), format!("tenant `{name}`: dirs: {e}")))?;
                mount.host = base.join(&mount.host);
                if !mount.host.is_dir() {
                    return Err(at(
                        dirs.span(),
                        format!(
                            "tenant `{name}`: dirs: `{dir}`: {} is not a directory",
                            mount.host.display()
                        ),
                    ));
                }
                fs.mounts.push(mount);
            }
        }
        if let Some(cwd) = &tenant.cwd {
            fs.cwd = Some(cwd.get_ref().clone());
        }
        // Opening checks the working directory and duplicate guest paths now,
        // so a bad manifest starts nothing.
        fs.open(base)
            .map_err(|e| at(tenant_span.clone(), format!("tenant `{name}`: {e}")))?;
        let mut limits = TenantLimits::default();
        let size = |field: &str, raw: &Spanned<RawSize>| match raw.get_ref() {
            RawSize::Bytes(n) => Ok(*n),
            RawSize::Text(t) => fields::size(t)
                .map_err(|e| at(raw.span(), format!("tenant `{name}`: {field}: {e}"))),
        };
        let count = |field: &str, raw: &Spanned<usize>| {
            fields::check_count(*raw.get_ref())
                .map_err(|e| at(raw.span(), format!("tenant `{name}`: {field} {e}")))
        };
        if let Some(raw) = &tenant.max_memory {
            limits.max_memory = Some(size("max-memory", raw)?);
        }
        if let Some(cpu) = &tenant.max_cpu {
            limits.max_cpu = Some(
                fields::check_cpu_share(*cpu.get_ref())
                    .map_err(|e| at(cpu.span(), format!("tenant `{name}`: max-cpu: {e}")))?,
            );
        }
        if let Some(raw) = &tenant.max_connections {
            limits.max_sockets = count("max-connections", raw)?;
        }
        if let Some(raw) = &tenant.max_js_heap {
            let bytes = size("max-js-heap", raw)?;
            limits.max_object_bytes = fields::check_js_heap(bytes)
                .map_err(|e| at(raw.span(), format!("tenant `{name}`: max-js-heap {e}")))?;
        }
        if let Some(raw) = &tenant.max_open_files {
            limits.max_open_files = count("max-open-files", raw)?;
        }
        if let Some(raw) = &tenant.max_js_refs {
            limits.max_references = count("max-js-refs", raw)?;
        }
        if let Some(raw) = &tenant.max_timers {
            limits.max_timers = count("max-timers", raw)?;
        }
        if let Some(raw) = &tenant.http_max_header {
            limits.http.max_header_bytes = fields::check_header_size(size("http-max-header", raw)?)
                .map_err(|e| at(raw.span(), format!("tenant `{name}`: http-max-header {e}")))?;
        }
        if let Some(raw) = &tenant.http_max_body {
            limits.http.max_body_bytes = size("http-max-body", raw)?;
        }
        let timeout = |field: &str, raw: &Spanned<String>| {
            fields::timeout(raw.get_ref())
                .map_err(|e| at(raw.span(), format!("tenant `{name}`: {field}: {e}")))
        };
        if let Some(raw) = &tenant.http_header_timeout {
            limits.http.header_timeout = timeout("http-header-timeout", raw)?;
        }
        if let Some(raw) = &tenant.http_idle_timeout {
            limits.http.idle_timeout = timeout("http-idle-timeout", raw)?;
        }
        if let Some(raw) = &tenant.http_max_requests {
            limits.http.max_requests = count("http-max-requests", raw)?;
        }
        let server_tls = tls_pair(&tenant.tls_cert, &tenant.tls_key, base)
            .map_err(|(span, e)| at(span, format!("tenant `{name}`: {e}")))?;
        let client_tls = match &tenant.ca_cert {
            None => wasabi_gojs::ClientTls::system(),
            Some(files) => {
                let paths: Vec<PathBuf> = files.get_ref().iter().map(|f| base.join(f)).collect();
                fields::client_tls(&paths)
                    .map_err(|e| at(files.span(), format!("tenant `{name}`: ca-cert: {e}")))?
            }
        };
        let mut routes = Vec::new();
        if let Some(raw) = &tenant.routes {
            if router.is_none() {
                return Err(at(
                    raw.span(),
                    format!("tenant `{name}`: routes need a [router] with a listen address"),
                ));
            }
            for text in raw.get_ref() {
                let route: wasabi_gojs::Route = text
                    .parse()
                    .map_err(|e| at(raw.span(), format!("tenant `{name}`: routes: {e}")))?;
                if let Some(other) = routes_seen.insert(route.to_string(), name.clone()) {
                    return Err(at(
                        raw.span(),
                        format!("tenant `{name}`: routes: {route} is already tenant `{other}`'s"),
                    ));
                }
                routes.push(route);
            }
        }
        let env = tenant.env.unwrap_or_default();
        for (key, value) in &env {
            fields::env_name(key)
                .and_then(|()| fields::env_value(key, value))
                .map_err(|e| at(tenant_span.clone(), format!("tenant `{name}`: env: {e}")))?;
        }
        specs.push(TenantSpec {
            name,
            module: module_path,
            precompiled: match tenant.allow_precompiled {
                Some(true) => PrecompiledCode::Allowed,
                _ => PrecompiledCode::Refused,
            },
            program_name: None,
            args: tenant.args.unwrap_or_default(),
            env: env.into_iter().collect(),
            net,
            fs,
            limits,
            restart: tenant.restart.map(Spanned::into_inner).unwrap_or_default(),
            go_test_runner: false,
            server_tls,
            client_tls,
            routes,
        });
    }
    Ok(Manifest {
        tenants: specs,
        router,
    })
}

/// A `tls-cert` and `tls-key` pair: both or neither; the error comes with
/// the span to point at.
fn tls_pair(
    cert: &Option<Spanned<String>>,
    key: &Option<Spanned<String>>,
    base: &Path,
) -> Result<Option<wasabi_gojs::ServerTls>, (Range<usize>, String)> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            fields::server_tls(&base.join(cert.get_ref()), &base.join(key.get_ref()))
                .map(Some)
                .map_err(|e| (cert.span(), format!("tls-cert: {e}")))
        }
        (Some(one), None) | (None, Some(one)) => Err((
            one.span(),
            "tls-cert and tls-key go together: give both".into(),
        )),
    }
}

/// The manifest field that sets `cap`; `wasabi run`'s flag for it is the
/// same name after `--`.
pub fn limit_field(cap: Cap) -> &'static str {
    match cap {
        Cap::Memory => "max-memory",
        Cap::Cpu => "max-cpu",
        Cap::Sockets => "max-connections",
        Cap::ObjectBytes => "max-js-heap",
        Cap::OpenFiles => "max-open-files",
        Cap::References => "max-js-refs",
        Cap::Timers => "max-timers",
    }
}

/// How a tenant of a manifest is told to change what it was refused: by
/// the manifest field that grants or raises it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManifestAdvice;

impl Advice for ManifestAdvice {
    fn grant(&self, grant: &Grant<'_>) -> Option<String> {
        Some(match grant {
            Grant::Listen { endpoint } => format!(
                "map it in the tenant's listen table, e.g. listen = {{ \"{endpoint}\" = \"127.0.0.1:PORT\" }}"
            ),
            Grant::Connect { endpoint } => format!(
                "grant it in the tenant's allow-connect list, e.g. allow-connect = [\"{endpoint}\"]"
            ),
        })
    }

    fn raise(&self, cap: Cap) -> Option<String> {
        Some(format!(
            "raise the tenant's {} in the manifest",
            limit_field(cap)
        ))
    }
}

/// Two host addresses that cannot both be bound: the same port on the same
/// IP, or on the unspecified address and any other.
fn ports_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// An error at `span` of `text`, the file `path`.
fn located(text: &str, path: &Path, span: Range<usize>, message: String) -> ManifestError {
    let (line, column) = line_column(text, span.start);
    ManifestError {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Result<Manifest, ManifestError> {
        // Any existing file will do as a module here: this test's own source.
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        parse_manifest(text, Path::new("m.toml"), &base)
    }

    fn parse(text: &str) -> Result<Vec<TenantSpec>, ManifestError> {
        parse_all(text).map(|m| m.tenants)
    }

    #[test]
    fn a_container_configuration_has_tenant_fields_but_not_the_containers() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Path::new("/wasabi.toml");
        // The module is the container's: it need not be a file here.
        let module = Path::new("/app.wasm");
        let spec = parse_tenant_config(
            "listen = { \"0.0.0.0:8080\" = \"0.0.0.0:8080\" }\ndirs = [\"src:/src:ro\"]\nmax-cpu = 0.5\n",
            config,
            base,
            module,
        )
        .unwrap();
        assert_eq!(spec.module, module);
        assert_eq!(spec.fs.mounts[0].host, base.join("src"));
        assert_eq!(spec.limits.max_cpu, Some(0.5));
        for field in [
            "name = \"x\"",
            "module = \"/bin/sh\"",
            "args = [\"-x\"]",
            "routes = [\"example.com\"]",
            "restart = \"always\"",
        ] {
            let e = parse_tenant_config(field, config, base, module).unwrap_err();
            assert!(
                e.message.contains("come from the container"),
                "{field}: {e}"
            );
        }
        let e =
            parse_tenant_config("[[tenant]]\nname = \"x\"\n", config, base, module).unwrap_err();
        assert!(e.to_string().starts_with("/wasabi.toml:1"), "{e}");
        let e = parse_tenant_config("dirs = [\"missing:/m\"]\n", config, base, module).unwrap_err();
        assert!(e.message.contains("not a directory"), "{e}");
    }

    #[test]
    fn a_router_and_routes_parse_and_routes_are_checked() {
        let m = parse_all(
            r#"
[router]
listen = "127.0.0.1:8080"

[[tenant]]
name = "blog"
module = "manifest.rs"
routes = ["Blog.example", "example.com/blog"]

[[tenant]]
name = "shop"
module = "manifest.rs"
routes = ["example.com/shop"]
"#,
        )
        .unwrap();
        assert_eq!(
            m.router.as_ref().map(|r| r.listen.to_string()),
            Some("127.0.0.1:8080".to_string())
        );
        let routes: Vec<String> = m.routes().iter().map(|(r, t)| format!("{r}={t}")).collect();
        assert_eq!(
            routes,
            [
                "blog.example=blog",
                "example.com/blog=blog",
                "example.com/shop=shop"
            ]
        );
        for (text, says) in [
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nroutes = [\"x.example\"]\n",
                "routes need a [router]",
            ),
            (
                "[router]\nlisten = \"127.0.0.1:1\"\n[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nroutes = [\"x.example\"]\n[[tenant]]\nname = \"b\"\nmodule = \"manifest.rs\"\nroutes = [\"X.example/\"]\n",
                "x.example is already tenant `a`'s",
            ),
            (
                "[router]\nlisten = \"127.0.0.1:1\"\n[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nroutes = [\"host:80\"]\n",
                "`host:80` is not a route",
            ),
            (
                "[router]\nlisten = \"nowhere\"\n[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\n",
                "router: listen: `nowhere` is not IP:PORT",
            ),
        ] {
            let e = parse_all(text).unwrap_err().to_string();
            assert!(e.contains(says), "{says:?} in {e}");
        }
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_manifest_parses_with_defaults() {
        let specs = parse(
            r#"
[defaults]
max-memory = "128MiB"
restart = "on-failure"

[[tenant]]
name = "blog"
module = "manifest.rs"
args = ["-v"]
env = { GREETING = "hi" }
listen = { "127.0.0.1:8080" = "127.0.0.1:9001" }
allow-connect = ["127.0.0.1:5432", "10.0.0.0/8"]
dirs = ["..:/srv/code:ro", "."]
cwd = "/srv"
max-memory = "64MiB"
max-connections = 256
max-cpu = 0.5
max-js-heap = "32MiB"
max-open-files = 10
max-js-refs = 1000
max-timers = 20
http-max-header = "16KiB"
http-max-body = 1000
http-header-timeout = "2s"
http-idle-timeout = "500ms"
http-max-requests = 8

[[tenant]]
name = "shop"
module = "manifest.rs"
listen = { "127.0.0.1:8080" = "127.0.0.1:9002" }
restart = "never"
"#,
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        let blog = &specs[0];
        assert_eq!(blog.args, ["-v"]);
        assert_eq!(blog.env, [("GREETING".to_string(), "hi".to_string())]);
        assert_eq!(blog.limits.max_memory, Some(64 << 20));
        assert_eq!(blog.limits.max_sockets, 256);
        assert_eq!(blog.limits.max_cpu, Some(0.5));
        assert_eq!(
            (
                blog.limits.max_object_bytes,
                blog.limits.max_open_files,
                blog.limits.max_references,
                blog.limits.max_timers
            ),
            (32 << 20, 10, 1000, 20)
        );
        assert_eq!(
            blog.limits.http,
            wasabi_limits::HttpLimits {
                max_header_bytes: 16 << 10,
                max_body_bytes: 1000,
                header_timeout: std::time::Duration::from_secs(2),
                idle_timeout: std::time::Duration::from_millis(500),
                max_requests: 8,
            }
        );
        assert_eq!(specs[1].limits.http, wasabi_limits::HttpLimits::default());
        assert_eq!(blog.restart, RestartPolicy::OnFailure);
        assert_eq!(
            blog.net.listen_map(),
            [(
                "127.0.0.1:8080".parse().unwrap(),
                "127.0.0.1:9001".parse().unwrap()
            )]
        );
        let mounts = &blog.fs.mounts;
        assert_eq!(mounts.len(), 2);
        assert_eq!(
            (mounts[0].guest.as_deref(), mounts[0].read_only),
            (Some("/srv/code"), true)
        );
        assert!(mounts[1].host.is_absolute() && mounts[1].guest.is_none());
        assert_eq!(blog.fs.cwd.as_deref(), Some("/srv"));
        let shop = &specs[1];
        assert_eq!(shop.limits.max_memory, Some(128 << 20), "from [defaults]");
        assert!(shop.fs.mounts.is_empty(), "nothing is visible by default");
        assert_eq!(shop.restart, RestartPolicy::Never);
    }

    #[test]
    fn every_error_names_the_line() {
        let cases = [
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\ncolour = \"red\"\n",
                "m.toml:4:1: unknown field `colour`",
            ),
            (
                "[[tenant]]\nname = \"a\"\n",
                "m.toml:1:1: tenant `a` has no `module`",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"nope.wasm\"\n",
                "m.toml:3:10: tenant `a`: module `nope.wasm` not found",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\n\n[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\n",
                "m.toml:6:8: duplicate tenant name `a` (first used on line 2)",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nlisten = { \"127.0.0.1:80\" = \"127.0.0.1:9001\" }\n\n[[tenant]]\nname = \"b\"\nmodule = \"manifest.rs\"\nlisten = { \"127.0.0.1:80\" = \"0.0.0.0:9001\" }\n",
                "m.toml:9:10: tenants `a` (line 4) and `b` both listen on host address 0.0.0.0:9001",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nmax-memory = \"12XB\"\n",
                "m.toml:4:14: tenant `a`: max-memory:",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nlisten = { \"localhost:80\" = \"127.0.0.1:1\" }\n",
                "m.toml:4:10: tenant `a`: listen: `localhost:80` is not an IP:PORT address",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nallow-connect = [\"10.0.0.0/99\"]\n",
                "m.toml:4:17: tenant `a`: allow-connect: invalid address rule `10.0.0.0/99`",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\ndirs = [\"no-such-dir:/x\"]\n",
                "m.toml:4:8: tenant `a`: dirs: `no-such-dir:/x`:",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\ndirs = [\".:data\"]\n",
                "m.toml:4:8: tenant `a`: dirs: `.:data`: the guest path `data` must be absolute",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\ndirs = [\".:/d\"]\ncwd = \"/elsewhere\"\n",
                "m.toml:1:1: tenant `a`: the working directory /elsewhere is neither mounted nor above a mount",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nrestart = \"sometimes\"\n",
                "m.toml:4:11: unknown restart policy `sometimes`",
            ),
            (
                "[[tenant]]\nname = \"a b\"\nmodule = \"manifest.rs\"\n",
                "m.toml:2:8: invalid tenant name `a b`",
            ),
            (
                "[defaults]\nname = \"x\"\n",
                "m.toml:2:8: `name` cannot have a default",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nmax-open-files = 0\n",
                "m.toml:4:18: tenant `a`: max-open-files must be at least 1",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nmax-js-heap = \"lots\"\n",
                "m.toml:4:15: tenant `a`: max-js-heap:",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nmax-js-heap = \"0\"\n",
                "m.toml:4:15: tenant `a`: max-js-heap must be at least 64 KiB",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nmax-memory = -5\n",
                "m.toml:4:14: a size such as \"64MiB\" or a whole number of bytes",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nmax-cpu = 0.0\n",
                "m.toml:4:11: tenant `a`: max-cpu: `0` is not a fraction of a core more than 0",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nenv = { \"A=B\" = \"x\" }\n",
                "m.toml:1:1: tenant `a`: env: `A=B` cannot be a variable name",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nhttp-max-header = \"1KiB\"\n",
                "m.toml:4:19: tenant `a`: http-max-header must be at least 8 KiB",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nhttp-header-timeout = \"soon\"\n",
                "m.toml:4:23: tenant `a`: http-header-timeout: `soon` is not a duration such as 10s or 500ms",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nhttp-idle-timeout = \"0s\"\n",
                "m.toml:4:21: tenant `a`: http-idle-timeout: must be at least 1ms",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nhttp-max-requests = 0\n",
                "m.toml:4:21: tenant `a`: http-max-requests must be at least 1",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\ntls-cert = \"manifest.rs\"\n",
                "m.toml:4:12: tenant `a`: tls-cert and tls-key go together: give both",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\ntls-cert = \"manifest.rs\"\ntls-key = \"manifest.rs\"\n",
                "m.toml:4:12: tenant `a`: tls-cert: certificate",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nca-cert = [\"manifest.rs\"]\n",
                "m.toml:4:11: tenant `a`: ca-cert: CA certificate",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nca-cert = [\"no-such.pem\"]\n",
                "m.toml:4:11: tenant `a`: ca-cert: CA certificate",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nca-cert = \"ca.pem\"\n",
                "m.toml:4:11: invalid type: string \"ca.pem\", expected a sequence",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmodule = \"manifest.rs\"\nca-cert = [\"/tmp\"]\n",
                "m.toml:4:11: tenant `a`: ca-cert: CA certificate /tmp: not a regular file",
            ),
            ("", "m.toml:1:1: the manifest has no tenants"),
            ("[[tenant]\n", "m.toml:1:"),
        ];
        for (text, expected) in cases {
            let err = error(text);
            assert!(
                err.starts_with(expected),
                "{text:?}\n  got: {err}\n want: {expected}"
            );
        }
    }
}
