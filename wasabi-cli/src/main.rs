//! `wasabi`: run Go js/wasm programs, and compile them ahead of time.
//!
//! The binary is a thin layer over `wasabi-core`: it parses flags, builds a
//! [`Runtime`], and maps outcomes to exit codes and messages.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use wasabi_core::admin::serve_admin;
use wasabi_core::wasabi_gojs::{
    AddressRule, DEFAULT_MAX_SOCKETS, GoHostBuilder, NetPolicy, RunError,
};
use wasabi_core::{
    LogFormat, Runtime, RuntimeConfig, Supervisor, TenantError, TenantLimits, load_manifest,
    parse_size,
};

/// Exit code when the guest traps or breaks a limit (like an abort).
const EXIT_TRAP: u8 = 134;
/// Exit code when Wasabi itself cannot start the program.
const EXIT_ERROR: u8 = 1;

#[derive(Parser)]
#[command(
    name = "wasabi",
    version,
    about = "Run Go programs built with GOOS=js GOARCH=wasm, in a sandbox.",
    long_about = "Run Go programs built with GOOS=js GOARCH=wasm, in a sandbox.\n\n\
        Wasabi gives a Go js/wasm program the JS world it expects from a browser or \
        Node.js, and nothing else: no files, no network and no environment variables \
        unless you grant them. Go programs reach the network through the companion \
        module wasabi.dev/go (Listen, Dial, ListenAndServe, RoundTripper).",
    after_help = "Examples:\n  \
        GOOS=js GOARCH=wasm go build -o hello.wasm ./hello\n  \
        wasabi run hello.wasm\n  \
        wasabi run --env GREETING=hi --max-memory 128MiB app.wasm -- -v input.txt\n  \
        wasabi run --allow-listen=127.0.0.1:8080 --allow-connect=127.0.0.1:5432 server.wasm\n  \
        wasabi compile app.wasm -o app.cwasm && wasabi run app.cwasm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Go js/wasm program (.wasm, or .cwasm from `wasabi compile`).
    #[command(
        after_help = "Exit status: the program's own exit code (2 for a Go panic); \
        134 when it traps or breaks a limit; 1 when Wasabi cannot start it.\n\n\
        Compiled code is cached (see --cache-dir); run with --verbose to see whether \
        a run compiled the module or loaded it from the cache."
    )]
    Run(RunArgs),
    /// Run many tenants side by side, as a manifest describes them.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Compile a Go js/wasm module ahead of time into a .cwasm file.
    #[command(
        after_help = "A .cwasm holds machine code for this machine's CPU and this \
        build of Wasabi; `wasabi run` refuses one made elsewhere. Only run .cwasm files \
        you compiled yourself."
    )]
    Compile(CompileArgs),
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

    /// Report what Wasabi does: compile or cache hit, timings.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Give the program an environment variable: KEY=VALUE, or KEY to pass on the
    /// host's value. Repeatable. Nothing is passed unless named here.
    #[arg(long = "env", short = 'e', value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Largest memory the program may grow to, e.g. 256MiB or 1GiB [default: 4GiB, wasm's limit].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,

    /// Most CPU the program may use, as a fraction of one core (0.5 = half a core).
    #[arg(long, value_name = "FRACTION", value_parser = parse_cpu)]
    max_cpu: Option<f64>,

    #[command(flatten)]
    net: NetArgs,

    #[command(flatten)]
    cache: CacheArgs,

    /// The program: a .wasm built with GOOS=js GOARCH=wasm, or a .cwasm.
    #[arg(value_name = "FILE", help_heading = "Arguments")]
    file: PathBuf,

    /// Arguments for the program (after `--`), its os.Args[1:].
    #[arg(last = true, value_name = "ARGS", help_heading = "Arguments")]
    args: Vec<String>,
}

/// The network flags. Nothing is reachable unless granted here.
#[derive(Args)]
#[command(next_help_heading = "Network (nothing is reachable unless granted)")]
struct NetArgs {
    /// Let the program listen on these local addresses: IP[:PORT] or CIDR[:PORT]
    /// (IPv6 in brackets), comma-separated or repeated; without a port, any port.
    /// Example: --allow-listen=127.0.0.1:8080
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
    #[arg(long, value_name = "GUEST=HOST", value_parser = parse_mapping)]
    map_listen: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,

    /// Most sockets (listeners and connections) the program may hold open at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SOCKETS)]
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
  module = \"blog.wasm\"            # relative to the manifest; .wasm or .cwasm
  args = [\"-v\"]
  env = { GREETING = \"hi\" }
  listen = { \"127.0.0.1:8080\" = \"127.0.0.1:9001\" }   # guest address = host address
  allow-connect = [\"127.0.0.1:5432\"]
  max-memory = \"64MiB\"
  max-connections = 256
  max-cpu = 0.5                   # a fraction of one core
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
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
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

/// Parses a CPU fraction: more than 0, e.g. 0.25.
fn parse_cpu(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{text}` is not a fraction of a core more than 0, such as 0.5"
        )),
    }
}

/// Parses `GUEST=HOST`, two IP:PORT addresses.
fn parse_mapping(text: &str) -> Result<(std::net::SocketAddr, std::net::SocketAddr), String> {
    let (guest, host) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not GUEST=HOST"))?;
    let parse = |a: &str| {
        a.parse::<std::net::SocketAddr>()
            .map_err(|_| format!("`{a}` is not an IP:PORT address"))
    };
    Ok((parse(guest)?, parse(host)?))
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |i| text.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s or 500ms"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => return Err(format!("unknown unit `{other}`: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Serve(args) => serve(args),
        Command::Compile(args) => compile(args),
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
    let default = if verbose {
        "wasabi=info,wasabi_core=info"
    } else {
        "warn"
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
        if key.is_empty() {
            bail!("--env {flag}: the variable name is empty");
        }
        env.push((key, value));
    }
    Ok(env)
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.cache.verbose);
    let env = guest_env(&args.env)?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(&args.cache),
        ..RuntimeConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?;
    let module = runtime.load(&args.file)?;
    let mut host = GoHostBuilder::new()
        .arg(args.file.to_string_lossy())
        .args(args.args)
        .net_policy(args.net.policy());
    for (k, v) in env {
        host = host.env(k, v);
    }
    let limits = TenantLimits {
        max_memory: args.max_memory,
        max_sockets: args.net.max_connections,
        max_cpu: args.max_cpu,
        ..TenantLimits::default()
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    match tokio.block_on(runtime.run(&module, host, limits)) {
        Ok(outcome) => Ok(ExitCode::from(outcome.code() as u8)),
        Err(e) => {
            report(&e);
            Ok(ExitCode::from(match e {
                TenantError::Instantiate(_)
                | TenantError::Setup(_)
                | TenantError::Run(RunError::MissingExport(_) | RunError::ArgsTooLong(_)) => {
                    EXIT_ERROR
                }
                _ => EXIT_TRAP,
            }))
        }
    }
}

/// Prints why a tenant failed, with the guest backtrace for traps.
fn report(e: &TenantError) {
    match e {
        TenantError::Run(run @ RunError::Trap(_)) => {
            eprintln!("wasabi: {run}");
            if let Some(backtrace) = run.guest_backtrace() {
                eprintln!("guest backtrace:\n{backtrace}");
            }
        }
        other => eprintln!("wasabi: {other}"),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.cache.verbose);
    // A manifest with any error starts nothing.
    let specs = load_manifest(&args.manifest)?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(&args.cache),
        instance_slots: Some(args.max_instances),
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
        let supervisor = Arc::new(Supervisor::with_output(
            runtime,
            format,
            Arc::new(Mutex::new(Box::new(std::io::stdout()))),
            Arc::new(Mutex::new(Box::new(std::io::stderr()))),
        ));
        supervisor.start_all(specs).await?;
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
                    Ok(specs) => {
                        for e in supervisor.reconcile(specs, args.grace).await {
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
