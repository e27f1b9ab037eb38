//! The `wasi_snapshot_preview1` imports Wasabi defines itself (every call
//! that takes or returns a descriptor, sockets, the WasmEdge extension),
//! with arbitrary arguments: the input is a program of records (an import,
//! then nine 32-bit arguments) that a small wasm interpreter runs, and also
//! the memory those arguments point into, so every descriptor, pointer,
//! length, address and flag is arbitrary. The world has a read-only mount,
//! `/dev/null` and `/etc/hosts`, and loopback sockets.

use std::sync::OnceLock;
use std::time::Duration;

use wasabi_net::{AddressRule, DrainSignal, NetPolicy};
use wasabi_wasi::{Preopen, WasiHost, WasiWorld};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};

/// The target.
pub const TARGET: crate::Target = crate::Target {
    name: "wasi-imports",
    about: "the WASI imports Wasabi defines (descriptors, sockets, the WasmEdge extension), with arbitrary arguments",
    dictionary: &[
        b"\x03\x00\x00\x00",
        b"\x04\x00\x00\x00",
        b"\x05\x00\x00\x00",
        b"\x00\x00\x01\x00",
        b"\xff\xff\xff\xff",
        b"\x7f\x00\x00\x01",
        b"\x01\x00\x00\x00",
        b"\x02\x00\x00\x00",
        b"null",
        b"hosts",
        b"file",
    ],
    run,
};

/// The imports, in the interpreter's numbering, with their parameters
/// (`i` an i32, `I` an i64); each returns an errno.
const IMPORTS: &[(&str, &str)] = &[
    ("fd_read", "iiii"),
    ("fd_write", "iiii"),
    ("fd_pread", "iiiIi"),
    ("fd_pwrite", "iiiIi"),
    ("fd_close", "i"),
    ("fd_seek", "iIii"),
    ("fd_tell", "ii"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_filestat_get", "ii"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("path_open", "iiiiiIIii"),
    ("path_filestat_get", "iiiii"),
    ("path_create_directory", "iii"),
    ("path_unlink_file", "iii"),
    ("path_symlink", "iiiii"),
    ("path_rename", "iiiiii"),
    ("poll_oneoff", "iiii"),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
    ("sock_open", "iii"),
    ("sock_bind", "iii"),
    ("sock_listen", "ii"),
    ("sock_connect", "iii"),
    ("sock_getsockopt", "iiiii"),
    ("sock_setsockopt", "iiiii"),
    ("sock_getlocaladdr", "iii"),
    ("sock_getpeeraddr", "iii"),
    ("sock_recv_from", "iiiiiiii"),
    ("sock_send_to", "iiiiiii"),
    ("sock_getaddrinfo", "iiiiiiii"),
];

/// One record: the import, then nine arguments.
const RECORD: u32 = 1 + 9 * 4;

fn module_text() -> String {
    let mut wat = String::from("(module\n");
    for (i, (name, params)) in IMPORTS.iter().enumerate() {
        let params: Vec<&str> = params
            .chars()
            .map(|c| if c == 'I' { "i64" } else { "i32" })
            .collect();
        wat += &format!(
            "  (import \"wasi_snapshot_preview1\" \"{name}\" (func $i{i} (param {}) (result i32)))\n",
            params.join(" ")
        );
    }
    wat += "  (memory (export \"memory\") 2)\n";
    wat += "  (global $len (mut i32) (i32.const 0))\n";
    wat += "  (func (export \"set_len\") (param i32) (global.set $len (local.get 0)))\n";
    wat += "  (func (export \"_start\") (local $pc i32) (local $op i32)\n";
    wat += "    (block $done (loop $next\n";
    wat += &format!(
        "      (br_if $done (i32.gt_u (i32.add (local.get $pc) (i32.const {RECORD})) (global.get $len)))\n"
    );
    wat += &format!(
        "      (local.set $op (i32.rem_u (i32.load8_u (local.get $pc)) (i32.const {})))\n",
        IMPORTS.len()
    );
    for i in (0..IMPORTS.len()).rev() {
        wat += &format!("      (block $b{i}\n");
    }
    wat += "      (br_table ";
    for i in 0..IMPORTS.len() {
        wat += &format!("$b{i} ");
    }
    wat += "$b0 (local.get $op))\n";
    for (i, (_, params)) in IMPORTS.iter().enumerate() {
        let args: String = params
            .chars()
            .enumerate()
            .map(|(k, c)| {
                let load = format!("(i32.load offset={} (local.get $pc))", 1 + 4 * k);
                if c == 'I' {
                    format!(" (i64.extend_i32_s {load})")
                } else {
                    format!(" {load}")
                }
            })
            .collect();
        wat += &format!("      ) (drop (call $i{i}{args}))\n");
        wat += &format!(
            "      (local.set $pc (i32.add (local.get $pc) (i32.const {RECORD}))) (br $next)\n"
        );
    }
    wat += "    ))\n  )\n)\n";
    wat
}

struct Harness {
    engine: Engine,
    pre: InstancePre<WasiHost>,
    tokio: tokio::runtime::Runtime,
    root: std::path::PathBuf,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let engine = Engine::new(&wasmtime::Config::new()).expect("an engine");
        let wasm = wat::parse_str(module_text()).expect("the interpreter is valid wat");
        let module = Module::new(&engine, wasm).expect("the interpreter compiles");
        let mut linker = Linker::new(&engine);
        wasabi_wasi::add_to_linker(&mut linker, |h| h).expect("the WASI imports");
        let pre = linker
            .instantiate_pre(&module)
            .expect("every import resolves");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // A read-only mount with a file and a directory in it.
        let root = std::env::temp_dir().join(format!("wasabi-fuzz-wasi-{}", std::process::id()));
        let _ = std::fs::create_dir_all(root.join("dir"));
        let _ = std::fs::write(root.join("file"), b"content of a file\n");
        Harness {
            engine,
            pre,
            tokio,
            root,
        }
    })
}

fn run(input: &[u8]) {
    let h = harness();
    let mut policy = NetPolicy::deny_all();
    if let Ok(rule) = "127.0.0.1".parse::<AddressRule>() {
        policy.allow_listen(rule.clone()).allow_connect(rule);
    }
    h.tokio.block_on(async {
        let world = WasiWorld {
            args: vec!["fuzz".into()],
            env: vec![],
            preopens: vec![Preopen {
                host: h.root.clone(),
                guest: "/data".into(),
                read_only: true,
            }],
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(std::io::sink()),
            max_open_files: 16,
            net: policy,
            max_sockets: 8,
            listeners: vec![],
            advice: std::sync::Arc::new(wasabi_limits::NoAdvice),
            drain: DrainSignal::new(),
            builtins: true,
        };
        let Ok(host) = world.build() else {
            return;
        };
        let mut store = Store::new(&h.engine, host);
        let Ok(instance) = h.pre.instantiate_async(&mut store).await else {
            return;
        };
        let Some(memory) = instance.get_memory(&mut store, "memory") else {
            return;
        };
        let data = memory.data_mut(&mut store);
        let program = &input[..input.len().min(data.len())];
        data[..program.len()].copy_from_slice(program);
        if let Ok(set_len) = instance.get_typed_func::<i32, ()>(&mut store, "set_len") {
            let _ = set_len.call_async(&mut store, program.len() as i32).await;
        }
        // A blocking accept or poll may wait for ever: the run is cut short.
        let _ = tokio::time::timeout(
            Duration::from_millis(100),
            wasabi_wasi::run(&mut store, &instance),
        )
        .await;
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_interpreter_compiles_and_runs() {
        super::run(b"");
        // fd_fdstat_get(1, 64), then sock_open(1, 2, 64).
        let mut program = vec![7u8, 1, 0, 0, 0, 64, 0, 0, 0];
        program.resize(37, 0);
        program.extend_from_slice(&[25, 1, 0, 0, 0, 2, 0, 0, 0, 64, 0, 0, 0]);
        program.resize(74, 0);
        super::run(&program);
    }
}
