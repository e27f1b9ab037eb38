//! Every cap of `TenantLimits` is set by its flag, holds, and a program
//! that reaches it is told which flag raises it. (Under `serve`, the same
//! caps come from manifest fields: `serve::refusals_name_the_manifest_field_and_every_limit_is_shown`.)

mod support;

use support::*;

#[test]
fn the_reference_cap_ends_the_program_and_names_its_flag() {
    let out = run_guest(&program("hello.wasm"), &["--max-js-refs", "3"], &[]);
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("too many live JS value references (limit 3): raise it with --max-js-refs"),
        "{}",
        stderr(&out)
    );
    let out = run_guest(&program("hello.wasm"), &["--max-js-refs", "1000"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_js_heap_cap_is_a_range_error_that_names_its_flag() {
    let out = run_guest(
        &program("host-hog.wasm"),
        &["--max-js-heap", "8MiB"],
        &["arrays"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "out of memory for JS objects: this instance may hold 8388608 bytes of host objects"
        ) && stderr(&out).contains("more: raise it with --max-js-heap"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_js_heap_cap_too_small_for_the_js_world_itself_is_refused_before_anything_runs() {
    for tiny in ["0", "1KiB", "65535"] {
        let out = run_guest(
            &program("hello.wasm"),
            &[&format!("--max-js-heap={tiny}")],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{tiny}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("must be at least 64 KiB"),
            "{tiny}: {}",
            stderr(&out)
        );
    }
    let out = run_guest(&program("hello.wasm"), &["--max-js-heap=64KiB"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Values past what a count or a size can hold are refused, not wrapped;
/// the largest count is accepted and means no practical cap.
#[test]
fn huge_limits_are_refused_or_taken_as_written() {
    let out = run_guest(
        &program("hello.wasm"),
        &["--max-js-refs=18446744073709551616"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a whole number"),
        "{}",
        stderr(&out)
    );
    let out = run_guest(
        &program("hello.wasm"),
        &["--max-js-heap=99999999999999999999GiB"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run_guest(
        &program("hello.wasm"),
        &["--max-js-refs=18446744073709551615"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_open_file_cap_is_emfile() {
    let dir = scratch("limits-open-files");
    let mount = format!("{}:/d", dir.display());
    let flags = ["--dir", &mount, "--max-open-files", "3"];
    let out = run_guest(&program("fs-probe.wasm"), &flags, &["open-many", "/d", "3"]);
    assert_eq!(stdout(&out), "3 open\n", "{}", stderr(&out));
    let out = run_guest(&program("fs-probe.wasm"), &flags, &["open-many", "/d", "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "open 4: open /d: Too many open files\n");
}

#[test]
fn every_count_cap_refuses_zero_and_nonsense_before_anything_runs() {
    for flag in [
        "--max-open-files",
        "--max-js-refs",
        "--max-timers",
        "--max-connections",
    ] {
        for bad in ["0", "-1", "many"] {
            let out = run_guest(&program("hello.wasm"), &[&format!("{flag}={bad}")], &[]);
            assert_eq!(out.status.code(), Some(2), "{flag} {bad}");
            assert!(
                stderr(&out).contains(&format!("invalid value '{bad}' for '{flag}")),
                "{flag} {bad}: {}",
                stderr(&out)
            );
        }
    }
    let out = run_guest(&program("hello.wasm"), &["--max-js-heap", "12XB"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_guest(&program("hello.wasm"), &["--max-cpu", "0"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_guest(
        &program("hello.wasm"),
        &["--map-listen", "127.0.0.1:80=127.0.0.1:0"],
        &[],
    );
    assert!(
        stderr(&out).contains("the host port of `127.0.0.1:80` must be fixed, not 0"),
        "{}",
        stderr(&out)
    );
}
