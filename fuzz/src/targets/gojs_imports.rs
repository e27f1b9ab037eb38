//! Every `gojs` import of a real instance, called with hostile stack
//! frames: the input is a program of (import, stack pointer) pairs that a
//! small wasm interpreter runs, and also the memory those frames are read
//! from, so every argument — reference ids, pointers, lengths, numbers —
//! is arbitrary. The interpreter also runs from `resume`, so a call back
//! into "Go" re-enters it, nested, as Go's event loop does.

use std::sync::OnceLock;
use std::time::Duration;

use wasabi_gojs::{Abi, GoHost, GoHostBuilder};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};

/// The target.
pub const TARGET: crate::Target = crate::Target {
    name: "gojs-imports",
    about: "every gojs import of a real instance, with arbitrary frames, ids and lengths",
    dictionary: &[
        // Boxed references to the predefined values and the first ids.
        b"\x00\x00\x00\x00\x01\x00\xf8\x7f",
        b"\x05\x00\x00\x00\x01\x00\xf8\x7f",
        b"\x06\x00\x00\x00\x01\x00\xf8\x7f",
        b"\x07\x00\x00\x00\x01\x00\xf8\x7f",
        b"\x08\x00\x00\x00\x04\x00\xf8\x7f",
        b"\x09\x00\x00\x00\x02\x00\xf8\x7f",
        b"\x00\x00\x01\x00",
        b"\xff\xff\xff\x7f",
    ],
    run,
};

/// The imports, in the interpreter's numbering.
const IMPORTS: &[&str] = &[
    "runtime.wasmExit",
    "runtime.wasmWrite",
    "runtime.resetMemoryDataView",
    "runtime.nanotime1",
    "runtime.walltime",
    "runtime.scheduleTimeoutEvent",
    "runtime.clearTimeoutEvent",
    "runtime.getRandomData",
    "syscall/js.finalizeRef",
    "syscall/js.stringVal",
    "syscall/js.valueGet",
    "syscall/js.valueSet",
    "syscall/js.valueDelete",
    "syscall/js.valueIndex",
    "syscall/js.valueSetIndex",
    "syscall/js.valueCall",
    "syscall/js.valueInvoke",
    "syscall/js.valueNew",
    "syscall/js.valueLength",
    "syscall/js.valuePrepareString",
    "syscall/js.valueLoadString",
    "syscall/js.valueInstanceOf",
    "syscall/js.copyBytesToGo",
    "syscall/js.copyBytesToJS",
    "debug",
];

/// Where the program (a length, then 5-byte records) starts in memory.
const PROGRAM: usize = 65536;

fn module_text() -> String {
    let mut wat = String::from("(module\n");
    for (i, name) in IMPORTS.iter().enumerate() {
        wat += &format!("  (import \"gojs\" \"{name}\" (func $i{i} (param i32)))\n");
    }
    wat += "  (memory (export \"mem\") 4)\n";
    wat += "  (global $sp (mut i32) (i32.const 65536))\n";
    wat += "  (global $pc (mut i32) (i32.const 0))\n";
    wat += "  (func (export \"getsp\") (result i32) (global.get $sp))\n";
    wat += "  (func $interp (local $op i32)\n    (block $done (loop $next\n";
    wat += "      (br_if $done (i32.gt_u (i32.add (global.get $pc) (i32.const 5)) (i32.load (i32.const 65536))))\n";
    wat += "      (local.set $op (i32.rem_u (i32.load8_u offset=65540 (global.get $pc)) (i32.const 25)))\n";
    wat += "      (global.set $sp (i32.add (i32.const 65536) (i32.and (i32.load offset=65541 (global.get $pc)) (i32.const 0x1fff8))))\n";
    wat += "      (global.set $pc (i32.add (global.get $pc) (i32.const 5)))\n";
    // A br_table over 25 nested blocks: block k ends by calling import k.
    for i in (0..IMPORTS.len()).rev() {
        wat += &format!("      (block $b{i}\n");
    }
    wat += "      (br_table ";
    for i in 0..IMPORTS.len() {
        wat += &format!("$b{i} ");
    }
    wat += "$b0 (local.get $op))\n";
    for i in 0..IMPORTS.len() {
        wat += &format!("      ) (call $i{i} (global.get $sp)) (br $next)\n");
    }
    wat += "    ))\n  )\n";
    wat += "  (func (export \"run\") (param i32 i32) (call $interp))\n";
    wat += "  (func (export \"resume\") (call $interp))\n)\n";
    wat
}

struct Harness {
    engine: Engine,
    pre: InstancePre<GoHost>,
    tokio: tokio::runtime::Runtime,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let engine = Engine::new(&wasmtime::Config::new()).expect("an engine");
        let wasm = wat::parse_str(module_text()).expect("the interpreter is valid wat");
        let module = Module::new(&engine, wasm).expect("the interpreter compiles");
        let mut linker = Linker::new(&engine);
        wasabi_gojs::add_to_linker(&mut linker, Abi::Gojs).expect("the gojs imports");
        let pre = linker
            .instantiate_pre(&module)
            .expect("every import resolves");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Harness { engine, pre, tokio }
    })
}

fn run(input: &[u8]) {
    let h = harness();
    let host = GoHostBuilder::new()
        .arg("fuzz")
        .stdout(Box::new(std::io::sink()))
        .stderr(Box::new(std::io::sink()))
        .limits(wasabi_core::TenantLimits {
            max_object_bytes: 8 << 20,
            ..Default::default()
        })
        .build()
        .expect("a JS world");
    let mut store = Store::new(&h.engine, host);
    h.tokio.block_on(async {
        let Ok(instance) = h.pre.instantiate_async(&mut store).await else {
            return;
        };
        let Some(memory) = instance.get_memory(&mut store, "mem") else {
            return;
        };
        let data = memory.data_mut(&mut store);
        let program = &input[..input.len().min(data.len() - PROGRAM - 4)];
        data[PROGRAM..PROGRAM + 4].copy_from_slice(&(program.len() as u32).to_le_bytes());
        data[PROGRAM + 4..PROGRAM + 4 + program.len()].copy_from_slice(program);
        // A timer the program set may be far off: the run is cut short.
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            wasabi_gojs::run(&mut store, &instance),
        )
        .await;
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_interpreter_compiles_and_runs() {
        super::run(b"");
        // stringVal then valueGet on the global object, then exit.
        super::run(&[9, 0, 0, 0, 0, 10, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
