//! `wasabi`: run Go js/wasm programs and WASI preview-1 commands, and
//! compile them ahead of time.
//!
//! The binary is a thin layer over `wasabi-core`: it parses flags, builds a
//! [`Runtime`], and maps outcomes to exit codes and messages.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
mod advice;
mod cache_command;

use wasabi_core::admin::serve_admin;
use wasabi_core::manifest::ManifestAdvice;
use wasabi_core::{
    AddressRule, BackgroundCompile, HttpLimits, LoadError, LogFormat, MountSpec, NetPolicy,
    PrecompiledCode, Router, Runtime, RuntimeConfig, SandboxSpec, StartError, Supervisor,
    TenantError, TenantIo, TenantLimits, TenantSpec, Tiering, fields, load_manifest,
};

use crate::advice::FlagAdvice;
use crate::cache_command::{CacheCommand, cache_add_detached};

/// mimalloc rather than glibc's allocator: compiling a module is millions
/// of small allocations from several threads at once, where glibc's arenas
/// contend (about 15% of a cold start went to malloc and its locks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code when Wasabi itself cannot start the program.
const EXIT_ERROR: u8 = 1;

#[derive(Parser)]
#[command(
    name = "wasabi",
    version,
    about = "Run WebAssembly programs in a sandbox: Go js/wasm, and WASI preview-1 commands.",
    long_about = "Run WebAssembly programs in a sandbox: Go programs built with GOOS=js \
        GOARCH=wasm, and WASI preview-1 commands (Rust, C, AssemblyScript, Go with \
        GOOS=wasip1; they import wasi_snapshot_preview1 and export _start). The kind is \
        read from the module.\n\n\
        Wasabi gives a Go js/wasm program the JS world it expects from a browser or \
        Node.js, and a WASI command the system interface of WASI preview 1, and nothing \
        else: no files, no network and no environment variables unless you grant them \
        (--dir mounts become a WASI command's preopened directories). Go programs reach \
        the network through the companion module wasabi.dev/go (Listen, Dial, \
        ListenAndServe, RoundTripper; for js/wasm and wasip1), or make HTTP requests \
        with net/http unchanged (through the host's fetch); WASI commands in any \
        language get sockets under the same grants (listeners opened for them, and \
        WasmEdge's socket extension).",
    after_help = "Examples:\n  \
        GOOS=js GOARCH=wasm go build -o hello.wasm ./hello\n  \
        wasabi run hello.wasm\n  \
        wasabi run --dir ./data:/data tool.wasm -- /data/input.txt    # a WASI command\n  \
        wasabi run --env GREETING=hi --max-memory 128MiB app.wasm -- -v input.txt\n  \
        wasabi run --allow-listen=127.0.0.1:8080 --allow-connect=127.0.0.1:5432 server.wasm\n  \
        wasabi run --dir ./site:/srv:ro --dir ./uploads:/data site.wasm\n  \
        GOOS=js GOARCH=wasm go test -exec=\"wasabi go-exec\" ./...\n  \
        wasabi compile app.wasm -o app.cwasm && wasabi run --allow-precompiled app.cwasm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Go js/wasm program or a WASI command (.wasm; a .cwasm from `wasabi compile` with --allow-precompiled).
    #[command(
        after_help = "Exit status: the program's own exit code (2 for a Go panic; a WASI \
        command's proc_exit code); \
        134 when it traps or breaks a limit; 1 when Wasabi cannot start it.\n\n\
        A module not in the cache starts on Winch code (compiled in a fraction of \
        Cranelift's time); Cranelift's code is compiled in the background, at idle \
        priority, into the cache (see --cache-dir and `wasabi cache`), and every later \
        run loads it. --verbose says which compiler made the code a run used, and \
        whether it came from the cache."
    )]
    Run(RunArgs),
    /// Run many tenants side by side, as a manifest describes them.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Run a Go test or program the way `go test -exec` and `go run -exec` expect.
    #[command(name = "go-exec", after_help = GO_EXEC_HELP)]
    GoExec(GoExecArgs),
    /// Compile a module (Go js/wasm or WASI) ahead of time into a .cwasm file.
    #[command(
        after_help = "A .cwasm holds machine code for this machine's CPU and this \
        build of Wasabi, sealed with this installation's key (install.key in \
        $WASABI_HOME, else $XDG_CONFIG_HOME/wasabi or ~/.config/wasabi). `wasabi run` \
        loads one only with --allow-precompiled (`allow-precompiled = true` in a \
        manifest), and only if that key sealed it: a .cwasm from anywhere else, or \
        changed since, is refused."
    )]
    Compile(CompileArgs),
    /// List, prune, clear or fill the compiled-module cache.
    #[command(subcommand, after_help = cache_command::HELP)]
    Cache(CacheCommand),
}

#[derive(Args)]
#[command(next_help_heading = "Compiled-module cache and diagnostics")]
struct CacheArgs {
    /// Folder of the compiled-module cache [default: $XDG_CACHE_HOME/wasabi or ~/.cache/wasabi].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,

    /// Compile the module without reading or writing the cache.
    #[arg(long)]
    no_cache: bool,

    /// Which compiler makes the code of a module not in the cache: `auto` (Winch
    /// now, for a quick start, and Cranelift in the background, for the cache and
    /// every later run), `winch` (quickest to compile, slower code) or `cranelift`
    /// (the fastest code, compiled before the program starts).
    #[arg(long, value_name = "TIER", default_value = "auto", value_parser = tiering)]
    tier: Tiering,

    /// Size cap of the cache, e.g. 512MiB; past it the least recently used entries
    /// are removed [default: 1GiB].
    #[arg(long, value_name = "SIZE", env = "WASABI_CACHE_MAX_SIZE", value_parser = fields::size)]
    cache_max_size: Option<u64>,

    /// Report what Wasabi does: which compiler made the code, compile or cache
    /// hit, timings.
    #[arg(short, long)]
    verbose: bool,
}

impl CacheArgs {
    /// The runtime these flags describe; `background` is where a module
    /// started on Winch gets its Cranelift code.
    fn runtime_config(&self, background: BackgroundCompile) -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: cache_dir(self),
            cache_max_bytes: self.cache_max_size,
            tiering: self.tier,
            background,
            ..RuntimeConfig::default()
        }
    }
}

fn tiering(text: &str) -> Result<Tiering, String> {
    Tiering::from_name(text)
        .ok_or_else(|| format!("`{text}` is not a compiler tier: use auto, winch or cranelift"))
}

const GO_EXEC_HELP: &str = "\
Use it as the runner of Go's js/wasm (or wasip1) tests:

  GOOS=js GOARCH=wasm go test -exec=\"wasabi go-exec\" ./...
  GOOS=js GOARCH=wasm go test -exec=\"wasabi go-exec --allow-net=127.0.0.1\" ./pkg
  GOOS=wasip1 GOARCH=wasm go test -exec=\"wasabi go-exec\" ./...

or put it on PATH as go_js_wasm_exec (a symbolic link to wasabi), and `go test` \
finds it with no -exec at all.

The program sees what Go's own Node.js runner gives it: its arguments; the whole \
environment, with TMPDIR=/tmp; net/http's client on Go's in-process network, where \
httptest servers listen (to reach a real server, use wasabi.dev/go's RoundTripper \
with --allow-connect); the current directory (the package's, under go test) at its \
own path, as the working directory, read-write; a private, empty /tmp, removed \
afterwards; and GOROOT read-only. Nothing else, unless granted with the flags above. \
The exit status is the program's.";

#[derive(Args)]
struct GoExecArgs {
    #[command(flatten)]
    program: ProgramArgs,

    /// The test binary or program (.wasm).
    #[arg(value_name = "FILE", help_heading = "Arguments")]
    file: PathBuf,

    /// Its arguments, passed on as they are (no `--` needed).
    #[arg(
        value_name = "ARGS",
        help_heading = "Arguments",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    program: ProgramArgs,

    /// The program: a .wasm built with GOOS=js GOARCH=wasm, or a WASI
    /// preview-1 command (or, with --allow-precompiled, a .cwasm).
    #[arg(value_name = "FILE", help_heading = "Arguments")]
    file: PathBuf,

    /// Arguments for the program (after `--`): os.Args[1:] of a Go
    /// program, argv[1..] of a WASI command.
    #[arg(last = true, value_name = "ARGS", help_heading = "Arguments")]
    args: Vec<String>,
}

/// What `run` and `go-exec` share: the program's world and limits.
#[derive(Args)]
struct ProgramArgs {
    /// Give the program an environment variable: KEY=VALUE, or KEY to pass on the
    /// host's value. Repeatable. Nothing is passed unless named here.
    #[arg(long = "env", short = 'e', value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Largest memory the program may grow to, e.g. 256MiB or 1GiB [default: 4GiB, wasm's limit].
    #[arg(long, value_name = "SIZE", value_parser = fields::size)]
    max_memory: Option<u64>,

    /// Most CPU the program may use, as a fraction of one core (0.5 = half a core).
    #[arg(long, value_name = "FRACTION", value_parser = fields::cpu_share)]
    max_cpu: Option<f64>,

    /// Most host memory the program's JS objects may take (typed arrays,
    /// objects, the strings Go holds), e.g. 64MiB; it counts within
    /// --max-memory too [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = fields::js_heap)]
    max_js_heap: Option<usize>,

    /// Most files and directories the program may hold open at once.
    #[arg(long, value_name = "N", value_parser = fields::count,
          default_value_t = TenantLimits::default().max_open_files)]
    max_open_files: usize,

    /// Most references to JS values the program may hold at once.
    #[arg(long, value_name = "N", value_parser = fields::count,
          default_value_t = TenantLimits::default().max_references)]
    max_js_refs: usize,

    /// Most timers the program may have pending at once.
    #[arg(long, value_name = "N", value_parser = fields::count,
          default_value_t = TenantLimits::default().max_timers)]
    max_timers: usize,

    /// Accept FILE as precompiled machine code (a .cwasm), if `wasabi compile`
    /// made it with this installation's key. Without it, only WebAssembly runs.
    #[arg(long)]
    allow_precompiled: bool,

    #[command(flatten)]
    files: FsArgs,

    #[command(flatten)]
    net: NetArgs,

    #[command(flatten)]
    http: HttpArgs,

    #[command(flatten)]
    cache: CacheArgs,
}

/// The limits of the HTTP server the host runs for the program when it
/// serves with wasabi.Serve or wasabi.ListenAndServe.
#[derive(Args)]
#[command(
    next_help_heading = "HTTP server (wasabi.Serve: the host answers requests that break these)"
)]
struct HttpArgs {
    /// Largest request head (request line and headers), at least 8KiB; a larger
    /// one gets 431.
    #[arg(long, value_name = "SIZE", value_parser = fields::header_size,
          default_value = "64KiB")]
    http_max_header: usize,

    /// Largest request body; a larger one gets 413.
    #[arg(long, value_name = "SIZE", value_parser = fields::size, default_value = "32MiB")]
    http_max_body: u64,

    /// Time a client has to send a request head, from when its connection is
    /// ready for one (also how long a keep-alive connection may sit idle); a
    /// slower one gets 408 and is closed.
    #[arg(long, value_name = "DURATION", value_parser = fields::timeout, default_value = "10s")]
    http_header_timeout: std::time::Duration,

    /// How long a connection may move no bytes, with no request in progress,
    /// before it is closed.
    #[arg(long, value_name = "DURATION", value_parser = fields::timeout, default_value = "120s")]
    http_idle_timeout: std::time::Duration,

    /// Requests in progress at once; past it, clients get 503 with Retry-After.
    #[arg(long, value_name = "N", value_parser = fields::count,
          default_value_t = HttpLimits::DEFAULT_MAX_REQUESTS)]
    http_max_requests: usize,

    /// Serve HTTPS (TLS 1.2 and 1.3, HTTP/2 or HTTP/1.1 by ALPN) with this PEM
    /// certificate chain, leaf first; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl HttpArgs {
    /// The certificate and key, read now so a bad file stops the run
    /// before anything compiles.
    fn server_tls(&self) -> anyhow::Result<Option<wasabi_core::ServerTls>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(
                fields::server_tls(cert, key).map_err(|e| anyhow::anyhow!("--tls-cert: {e}"))?,
            )),
            _ => Ok(None),
        }
    }

    fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_header_bytes: self.http_max_header,
            max_body_bytes: self.http_max_body,
            header_timeout: self.http_header_timeout,
            idle_timeout: self.http_idle_timeout,
            max_requests: self.http_max_requests,
        }
    }
}

impl ProgramArgs {
    /// Every cap, from the flags; what no flag sets keeps its default.
    fn limits(&self) -> TenantLimits {
        let d = TenantLimits::default();
        TenantLimits {
            max_memory: self.max_memory,
            max_cpu: self.max_cpu,
            max_sockets: self.net.max_connections,
            max_object_bytes: self.max_js_heap.unwrap_or(d.max_object_bytes),
            max_open_files: self.max_open_files,
            max_references: self.max_js_refs,
            max_timers: self.max_timers,
            http: self.http.limits(),
        }
    }
}

/// The filesystem flags. Nothing is visible unless mounted here.
#[derive(Args)]
#[command(next_help_heading = "Files (nothing is visible unless mounted)")]
struct FsArgs {
    /// Mount a host directory: HOST[:GUEST][:ro]. The program sees HOST at GUEST
    /// (an absolute path; by default HOST's own absolute path), read-only with :ro.
    /// Repeatable. Paths are resolved inside the mount: `..`, absolute paths and
    /// symbolic links cannot lead out of it. Example: --dir ./data:/data:ro
    #[arg(long = "dir", value_name = "HOST[:GUEST][:ro]")]
    dirs: Vec<MountSpec>,

    /// The program's working directory, a guest path [default: the first --dir, or /].
    #[arg(long, value_name = "GUEST_PATH")]
    cwd: Option<String>,
}

impl FsArgs {
    fn spec(&self) -> SandboxSpec {
        SandboxSpec {
            mounts: self.dirs.clone(),
            cwd: self.cwd.clone(),
        }
    }
}

/// The network flags. Nothing is reachable unless granted here.
#[derive(Args)]
#[command(next_help_heading = "Network (nothing is reachable unless granted)")]
struct NetArgs {
    /// Let the program listen on these local addresses: IP[:PORT] or CIDR[:PORT]
    /// (IPv6 in brackets), comma-separated or repeated; without a port, any port.
    /// A WASI command that does not open listeners itself finds each single
    /// address granted here already open, as a descriptor after its preopened
    /// directories (fd 3 with no --dir). Example: --allow-listen=127.0.0.1:8080
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',')]
    allow_listen: Vec<AddressRule>,

    /// Let the program connect to these addresses: HOST:PORT, IP[:PORT] or CIDR[:PORT],
    /// comma-separated or repeated; without a port, any port. A host name grants that
    /// name, not the addresses it resolves to. Example: --allow-connect=10.0.0.0/8:5432
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',')]
    allow_connect: Vec<AddressRule>,

    /// Grant both listen and connect: on the addresses given, or with no value
    /// (`--allow-net`), on every address, for a program you trust.
    #[arg(
        long,
        value_name = "ADDR,...",
        num_args = 0..=1,
        require_equals = true,
        value_delimiter = ','
    )]
    allow_net: Option<Vec<AddressRule>>,

    /// Let the program listen on GUEST, bound on the host at HOST instead
    /// (both IP:PORT); the program sees GUEST. Repeatable.
    /// Example: --map-listen 127.0.0.1:8080=127.0.0.1:9001
    #[arg(long, value_name = "GUEST=HOST", value_parser = fields::listen_mapping_text)]
    map_listen: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,

    /// Also trust the certificate authorities in this PEM file for the
    /// program's HTTPS requests (fetch, so http.Get), besides the system's;
    /// for a private CA. Repeatable. Verification is always on.
    /// Example: --ca-cert internal-ca.pem
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<std::path::PathBuf>,

    /// Most sockets (listeners and connections) the program may hold open at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = TenantLimits::default().max_sockets,
        value_parser = fields::count
    )]
    max_connections: usize,
}

impl NetArgs {
    fn policy(&self) -> NetPolicy {
        let mut policy = NetPolicy::deny_all();
        match &self.allow_net {
            Some(rules) if rules.is_empty() => {
                policy.allow_all_listen().allow_all_connect();
            }
            Some(rules) => {
                for rule in rules {
                    policy
                        .allow_listen(rule.clone())
                        .allow_connect(rule.clone());
                }
            }
            None => {}
        }
        for rule in &self.allow_listen {
            policy.allow_listen(rule.clone());
        }
        for rule in &self.allow_connect {
            policy.allow_connect(rule.clone());
        }
        for (guest, host) in &self.map_listen {
            policy.map_listen(*guest, *host);
        }
        policy
    }
}

const SERVE_HELP: &str = "\
The manifest (TOML) lists the tenants:

  [defaults]                      # optional; any tenant field but name
  max-memory = \"128MiB\"

  [[tenant]]
  name = \"blog\"                   # unique; tags its output and metrics
  module = \"blog.wasm\"            # relative to the manifest's folder; Go js/wasm or a WASI command
  allow-precompiled = false       # true: module may be a .cwasm `wasabi compile` made here
  args = [\"-v\"]
  env = { GREETING = \"hi\" }
  listen = { \"127.0.0.1:8080\" = \"127.0.0.1:9001\" }   # guest address = host address
  allow-connect = [\"127.0.0.1:5432\"]
  ca-cert = [\"internal-ca.pem\"]   # HTTPS (fetch) also trusts these CAs
  dirs = [\"./content:/srv:ro\"]     # HOST[:GUEST][:ro], relative to the manifest
  cwd = \"/srv\"                     # default: the first of dirs, or /
  max-memory = \"64MiB\"
  max-connections = 256
  max-cpu = 0.5                   # a fraction of one core
  max-js-heap = \"64MiB\"           # host memory for JS objects (within max-memory)
  max-open-files = 1024
  max-js-refs = 4194304           # references to JS values held at once
  max-timers = 65536              # timers pending at once
  restart = \"on-failure\"          # never | on-failure | always (with backoff)

Signals: SIGTERM or SIGINT stops accepting, lets open connections finish within \
--grace, then exits 0. SIGHUP reads the manifest again: new tenants start, removed ones \
stop gracefully, changed ones restart, the rest are untouched.

Without --admin and with every tenant ended for good, wasabi exits: 0 if each \
tenant's last run succeeded, 1 otherwise.";

#[derive(Args)]
struct ServeArgs {
    /// The manifest describing the tenants.
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,

    /// Serve /tenants (JSON) and /metrics (Prometheus) on this address, e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    admin: Option<std::net::SocketAddr>,

    /// How long stopping tenants may take to finish their connections, e.g. 10s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = fields::duration)]
    grace: Duration,

    /// Most tenant instances running at once. Their memory, tables and stacks are
    /// reserved up front (virtual memory only), which makes starting a tenant cheap.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_instances: u32,

    /// How tenant output is written: `text` (name | line) or `json` (one object a line).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormatArg,

    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Args)]
struct CompileArgs {
    /// The module to compile.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Where to write the precompiled module.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,

    /// Report timings.
    #[arg(short, long)]
    verbose: bool,
}

/// The name under which `go test` finds a js/wasm runner on PATH.
const GO_EXEC_NAME: &str = "go_js_wasm_exec";

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Installed as go_js_wasm_exec, wasabi is `wasabi go-exec`.
    let invoked_as = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n == GO_EXEC_NAME)
        .unwrap_or(false);
    if invoked_as {
        argv.splice(0..1, ["wasabi".into(), "go-exec".into()]);
    }
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::GoExec(args) => go_exec(args),
        Command::Serve(args) => serve(args),
        Command::Compile(args) => compile(args),
        Command::Cache(command) => cache_command::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasabi: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging(verbose: bool) {
    // wasmtime-wasi logs what a WASI guest calls (a warning per call of an
    // unimplemented function): guest-triggered, so it never reaches the
    // host's log unless WASABI_LOG asks for it.
    let default = if verbose {
        "wasabi=info,wasabi_core=info,wasmtime_wasi=off"
    } else {
        "warn,wasmtime_wasi=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASABI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
}

fn cache_dir(args: &CacheArgs) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    args.cache_dir
        .clone()
        .or_else(wasabi_core::cache::default_cache_dir)
}

/// Builds the guest environment from `--env` flags: only what is named.
fn guest_env(flags: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for flag in flags {
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let v = std::env::var(flag).with_context(|| {
                    format!("--env {flag}: the host has no variable `{flag}` to pass on")
                })?;
                (flag.clone(), v)
            }
        };
        fields::env_name(&key)
            .and_then(|()| fields::env_value(&key, &value))
            .map_err(|e| anyhow::anyhow!("--env {flag}: {e}"))?;
        env.push((key, value));
    }
    Ok(env)
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let env = guest_env(&args.program.env)?;
    let fs = args.program.files.spec();
    run_program(&args.program, &args.file, args.args, env, fs, false)
}

/// Runs one program with the world `program` describes, plus `env` and
/// the filesystem `fs`; the exit code is the program's.
fn run_program(
    program: &ProgramArgs,
    file: &std::path::Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    mut fs: SandboxSpec,
    go_test_runner: bool,
) -> anyhow::Result<ExitCode> {
    init_logging(program.cache.verbose);
    // Mounts are named relative to where wasabi was started; the tenant
    // description holds absolute paths only.
    let here = std::env::current_dir().context("cannot read the current directory")?;
    for mount in &mut fs.mounts {
        mount.host = std::path::absolute(here.join(&mount.host))
            .with_context(|| format!("--dir {}", mount.host.display()))?;
    }
    // Opened once now so a bad mount is reported before anything compiles.
    fs.open(std::path::Path::new("/"))?;
    let spec = TenantSpec {
        program_name: Some(file.to_string_lossy().into_owned()),
        precompiled: if program.allow_precompiled {
            PrecompiledCode::Allowed
        } else {
            PrecompiledCode::Refused
        },
        args,
        env,
        net: program.net.policy(),
        fs,
        limits: program.limits(),
        go_test_runner,
        server_tls: program.http.server_tls()?,
        client_tls: fields::client_tls(&program.net.ca_cert)
            .map_err(|e| anyhow::anyhow!("--ca-cert: {e}"))?,
        ..TenantSpec::new("main", file)
    };
    // The process ends with the program: Cranelift's code for the cache
    // is made by a detached `wasabi cache add`, so nothing waits for it.
    let background = BackgroundCompile::Detached(Arc::new(cache_add_detached));
    let runtime = Runtime::new(program.cache.runtime_config(background))
        .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?;
    let module = runtime
        .load(&spec.module, spec.precompiled)
        .map_err(|e| match e {
            LoadError::PrecompiledRefused { .. } => anyhow::anyhow!(
                "{e}; if `wasabi compile` made it here, run it with --allow-precompiled"
            ),
            e => e.into(),
        })?;
    let io = TenantIo {
        advice: Arc::new(FlagAdvice),
        ..TenantIo::default()
    };
    // The program runs on this thread (`block_on`); the host's network
    // work — the HTTP server's connections, socket waits, outbound
    // requests — runs on one worker thread beside it, so parsing and
    // writing HTTP overlaps with the guest's handlers instead of taking
    // turns with them.
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    match tokio.block_on(runtime.run(&module, &spec, io)) {
        Ok(outcome) => Ok(ExitCode::from(outcome.code() as u8)),
        Err(e) => {
            report(&e);
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

/// `wasabi go-exec`: what `go test -exec` and `go run -exec` call. The
/// current directory (the package's, under `go test`) is mounted at its own
/// path and is the working directory; a private temporary directory is
/// mounted at /tmp and named by TMPDIR; the Go toolchain's GOROOT is
/// mounted read-only; the whole environment is passed on, as Go's own
/// Node.js runner does.
fn go_exec(args: GoExecArgs) -> anyhow::Result<ExitCode> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let here_text = here
        .to_str()
        .context("the current directory's path is not UTF-8")?
        .to_string();
    let temp = PrivateTemp::create()?;
    let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k != "TMPDIR").collect();
    env.push(("TMPDIR".into(), "/tmp".into()));
    env.extend(guest_env(&args.program.env)?);
    let mut fs = args.program.files.spec();
    fs.mounts.insert(
        0,
        MountSpec {
            host: here.clone(),
            guest: Some(here_text.clone()),
            read_only: false,
        },
    );
    fs.mounts.push(MountSpec {
        host: temp.0.clone(),
        guest: Some("/tmp".into()),
        read_only: false,
    });
    // A GOROOT inside the current directory is already visible (read-write,
    // at its own path) through that mount; a read-only mount inside a
    // writable one would be refused.
    if let Some(goroot) = goroot().filter(|g| !g.starts_with(&here)) {
        fs.mounts.push(MountSpec {
            guest: goroot.to_str().map(str::to_string),
            host: goroot,
            read_only: true,
        });
    }
    fs.cwd = fs.cwd.or(Some(here_text));
    run_program(&args.program, &args.file, args.args, env, fs, true)
}

/// The Go toolchain's root: `$GOROOT`, or what `go env GOROOT` says.
fn goroot() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("GOROOT").filter(|r| !r.is_empty()) {
        return Some(root.into());
    }
    let out = std::process::Command::new("go")
        .args(["env", "GOROOT"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let root = PathBuf::from(text.trim());
    root.is_dir().then_some(root)
}

/// A temporary directory of one run, removed when it ends.
struct PrivateTemp(PathBuf);

impl PrivateTemp {
    fn create() -> anyhow::Result<PrivateTemp> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = base.join(format!(
                "wasabi-go-exec-{}-{nanos}-{attempt}",
                std::process::id()
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(PrivateTemp(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", dir.display()));
                }
            }
        }
        bail!(
            "cannot create a private temporary directory in {}",
            base.display()
        )
    }
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints why a tenant failed, with the guest backtrace for traps.
fn report(e: &TenantError) {
    eprintln!("wasabi: {}", e.report(&FlagAdvice));
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.cache.verbose);
    // A manifest with any error starts nothing.
    let manifest = load_manifest(&args.manifest)?;
    // The router's port is taken before any tenant starts, so a busy port
    // starts nothing either.
    let router_listener = match &manifest.router {
        Some(r) => Some(
            std::net::TcpListener::bind(r.listen)
                .with_context(|| format!("[router] listen = \"{}\": cannot listen", r.listen))?,
        ),
        None => None,
    };
    // A tenant started on Winch code keeps it until it restarts; its
    // module's Cranelift code, compiled on low-priority threads of this
    // process, is what every later start runs.
    let runtime = Runtime::new(RuntimeConfig {
        instance_slots: Some(args.max_instances),
        ..args.cache.runtime_config(BackgroundCompile::InProcess)
    })
    .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?;
    let format = match args.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    tokio.block_on(async move {
        let supervisor = Arc::new(
            Supervisor::with_output(
                runtime,
                format,
                Arc::new(Mutex::new(Box::new(std::io::stdout()))),
                Arc::new(Mutex::new(Box::new(std::io::stderr()))),
            )
            .with_advice(Arc::new(ManifestAdvice)),
        );
        // The router finds each tenant's current run through the supervisor.
        let router = match (router_listener, &manifest.router) {
            (Some(listener), Some(spec)) => {
                let lookup = {
                    let supervisor = Arc::downgrade(&supervisor);
                    Arc::new(move |tenant: &str| supervisor.upgrade()?.ingress(tenant))
                };
                let router = Router::new(lookup, spec.tls.clone());
                router.set_routes(manifest.routes());
                router.serve(listener)?;
                Some(router)
            }
            _ => None,
        };
        supervisor.start_all(manifest.tenants).await.map_err(|e| match e {
            StartError::Load {
                source: LoadError::PrecompiledRefused { .. },
                ..
            } => anyhow::anyhow!(
                "{e}; if `wasabi compile` made it here, set `allow-precompiled = true` for the tenant"
            ),
            e => e.into(),
        })?;
        if let Some(addr) = args.admin {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--admin {addr}: cannot listen"))?;
            tokio::spawn(serve_admin(listener, Arc::clone(&supervisor)));
        }
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut check = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => match load_manifest(&args.manifest) {
                    Ok(reloaded) => {
                        if let Some(router) = &router {
                            router.set_routes(reloaded.routes());
                        } else if !reloaded.routes().is_empty() || reloaded.router.is_some() {
                            eprintln!("wasabi: a [router] added by a reload starts with the next start of wasabi serve");
                        }
                        for e in supervisor.reconcile(reloaded.tenants, args.grace).await {
                            eprintln!("wasabi: {e}");
                        }
                        eprintln!("wasabi: reloaded {}", args.manifest.display());
                    }
                    Err(e) => eprintln!("wasabi: not reloaded, the running tenants are unchanged: {e}"),
                },
                _ = check.tick() => {
                    if args.admin.is_none() && supervisor.all_ended() {
                        let ok = supervisor.status().iter().all(|t| t.last_exit_ok != Some(false));
                        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ERROR) });
                    }
                }
            }
        }
        eprintln!("wasabi: stopping: draining every tenant (grace {:?})", args.grace);
        supervisor.shutdown(args.grace).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn compile(args: CompileArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.verbose);
    let runtime = Runtime::new(RuntimeConfig::default())
        .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?;
    let started = std::time::Instant::now();
    runtime.compile(&args.file, &args.output)?;
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "wrote {}",
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
