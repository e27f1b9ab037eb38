//! rust-probe: a Rust program built for WASI preview 1 (Debian's rustc and
//! its wasm32-wasi standard library) and natively from the same source, to
//! compare the two.
//!
//!   rust-probe hello [ARG...]   prints its arguments and $GREETING, exits 4
//!   rust-probe files DIR        writes, reads back, renames, lists and
//!                               removes files in DIR
//!   rust-probe primes N         counts the primes below N (CPU-bound)
//!   rust-probe serve N          answers N HTTP requests on descriptor 3,
//!                               the listener the runtime opened for it
//!                               (WASI only)

use std::io::Write;

fn hello(args: &[String]) -> i32 {
    println!("hello from Rust with {} arguments", args.len());
    for (i, a) in args.iter().enumerate() {
        println!("arg {i}: {a}");
    }
    match std::env::var("GREETING") {
        Ok(g) => println!("GREETING={g}"),
        Err(_) => println!("GREETING=(unset)"),
    }
    4
}

fn files(dir: &str) -> std::io::Result<i32> {
    let root = std::path::Path::new(dir).join("rust-probe");
    std::fs::create_dir(&root)?;
    for i in 0..3 {
        std::fs::write(root.join(format!("file-{i}.txt")), format!("line {i}\n"))?;
    }
    print!("read back: {}", std::fs::read_to_string(root.join("file-1.txt"))?);
    std::fs::rename(root.join("file-2.txt"), root.join("renamed.txt"))?;
    let mut f = std::fs::OpenOptions::new().append(true).open(root.join("renamed.txt"))?;
    f.write_all(b"appended\n")?;
    drop(f);
    print!("renamed: {}", std::fs::read_to_string(root.join("renamed.txt"))?);
    let mut names: Vec<String> = std::fs::read_dir(&root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for n in &names {
        println!("entry: {n} ({} bytes)", std::fs::metadata(root.join(n))?.len());
    }
    // One by one: remove_dir_all of Rust 1.63 reads the directory while it
    // deletes, and a preview-1 directory listing read in pieces may then
    // skip entries (wasmtime's CLI behaves the same).
    for n in &names {
        std::fs::remove_file(root.join(n))?;
    }
    std::fs::remove_dir(&root)?;
    println!("removed: {}", !root.exists());
    Ok(0)
}

fn primes(n: u64) -> i32 {
    let mut count = 0;
    for i in 2..n {
        if (2..).take_while(|d| d * d <= i).all(|d| i % d != 0) {
            count += 1;
        }
    }
    println!("primes below {n}: {count}");
    0
}

#[cfg(target_os = "wasi")]
fn serve(count: usize) -> std::io::Result<i32> {
    use std::io::Read;
    use std::os::wasi::io::FromRawFd;
    // SAFETY: descriptor 3 is the listener the runtime opened; this program
    // owns it from here on.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    println!("serving {count} requests");
    for served in 1..=count {
        let (mut conn, _) = listener.accept()?;
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&request);
        let first = text.lines().next().unwrap_or("");
        let body = format!("hello from Rust, request {served}: {first}\n");
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    }
    Ok(0)
}

#[cfg(not(target_os = "wasi"))]
fn serve(_: usize) -> std::io::Result<i32> {
    eprintln!("serve runs only under WASI");
    Ok(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None | Some("hello") => hello(&args),
        Some("files") if args.len() > 1 => files(&args[1]).unwrap_or_else(|e| {
            eprintln!("files: {e}");
            1
        }),
        Some("primes") if args.len() > 1 => primes(args[1].parse().unwrap_or(1000)),
        Some("serve") if args.len() > 1 => serve(args[1].parse().unwrap_or(1)).unwrap_or_else(|e| {
            eprintln!("serve: {e}");
            1
        }),
        _ => {
            eprintln!("usage: rust-probe hello|files DIR|primes N|serve N");
            2
        }
    };
    std::process::exit(code);
}
