//! The modules of each library crate form layers: no module reaches, through
//! `crate::` paths, a module that reaches back to it. A loop means two files
//! can only be understood together, and a change to one ripples through the
//! other; the architecture (README, "The layout") keeps data below the code
//! that uses it, and each concern in its own file. Checked by a test, so a
//! new loop fails CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which modules of the crate at `src` each module names (`crate::NAME`),
/// outside comments and tests (a test may set up anything). Modules are the
/// files of `src` (a folder counts as one module); `lib.rs`, which only
/// declares and re-exports, is left out.
pub fn module_graph(src: &Path) -> std::io::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut sources = BTreeMap::new();
    collect(src, src, &mut sources)?;
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, text) in &sources {
        let mut uses = BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if names.contains(&name) && name != *module {
                    uses.insert(name);
                }
            }
            // `use crate::{a::X, b::Y}` names several at once.
            if let Some(i) = code.find("crate::{") {
                for part in code[i + "crate::{".len()..].split([',', '{', '}', ' ']) {
                    let name = part.split("::").next().unwrap_or("");
                    if names.contains(name) && name != module {
                        uses.insert(name.to_string());
                    }
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    Ok(graph)
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let top = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.components().next())
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .unwrap_or_default();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") && top != "lib" && top != "main" {
            let text = std::fs::read_to_string(&path)?;
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            out.entry(top).or_default().push_str(code);
        }
    }
    Ok(())
}

/// Every loop of `graph`, each as the modules on it (smallest first), once.
pub fn loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from `start`, keeping the path; a step back to
        // `start` closes a loop.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    let first = cycle.iter().min().cloned().unwrap_or_default();
                    let pos = cycle.iter().position(|m| *m == first).unwrap_or(0);
                    cycle.rotate_left(pos);
                    found.insert(cycle);
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_src(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(name)
            .join("src")
    }

    #[test]
    fn no_library_crate_has_an_import_loop() {
        for name in [
            "wasabi-core",
            "wasabi-net",
            "wasabi-fs",
            "wasabi-limits",
            "wasabi-gojs",
        ] {
            let graph = module_graph(&crate_src(name)).unwrap();
            assert!(
                graph.len() > 1 || name == "wasabi-limits",
                "{name}: no modules read"
            );
            let loops = loops(&graph);
            assert!(loops.is_empty(), "{name} has import loops: {loops:?}");
        }
    }

    #[test]
    fn gojs_bottom_layer_names_nothing_above_it() {
        // Plain data: values, the object heap, the reference table, memory,
        // guest memory, timers, time zones, sizes.
        let bottom = [
            "value",
            "heap",
            "table",
            "memory",
            "guest_memory",
            "timers",
            "timezone",
            "size",
        ];
        let graph = module_graph(&crate_src("wasabi-gojs")).unwrap();
        for module in bottom {
            let uses = &graph[module];
            let above: Vec<_> = uses
                .iter()
                .filter(|u| !bottom.contains(&u.as_str()))
                .collect();
            assert!(above.is_empty(), "{module} reaches up to {above:?}");
        }
    }

    #[test]
    fn gojs_globals_and_their_core_name_nothing_above_them() {
        // The middle: one file per global, the JS core they share, text
        // conversions, output. None reaches the whole host or the code
        // that drives the guest; only dispatch hands each its parts.
        let top = ["host", "dispatch", "event_loop", "imports", "calling"];
        let graph = module_graph(&crate_src("wasabi-gojs")).unwrap();
        for module in ["globals", "js", "strings", "output", "realm"] {
            let uses = &graph[module];
            let above: Vec<_> = uses.iter().filter(|u| top.contains(&u.as_str())).collect();
            assert!(above.is_empty(), "{module} reaches up to {above:?}");
        }
    }

    #[test]
    fn no_flag_is_named_below_the_edge() {
        // Below the CLI nothing knows a flag's name: refusals say what
        // happened, and the edge (wasabi-cli's advice, the manifest's)
        // words the remedy. Code only; comments may cite flags as examples.
        for name in [
            "wasabi-core",
            "wasabi-gojs",
            "wasabi-net",
            "wasabi-fs",
            "wasabi-limits",
        ] {
            let mut sources = BTreeMap::new();
            collect(&crate_src(name), &crate_src(name), &mut sources).unwrap();
            for (module, code) in &sources {
                for line in code.lines() {
                    let code = line.split("//").next().unwrap_or("");
                    let flag = code
                        .match_indices("\"--")
                        .chain(code.match_indices(" --"))
                        .any(|(i, m)| {
                            code[i + m.len()..]
                                .chars()
                                .next()
                                .is_some_and(|c| c.is_ascii_lowercase())
                        });
                    assert!(!flag, "{name}/{module} names a flag: {line}");
                }
            }
        }
    }

    #[test]
    fn a_loop_is_found_and_a_layering_is_not() {
        let graph = |edges: &[(&str, &str)]| {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                g.entry(a.to_string()).or_default().insert(b.to_string());
                g.entry(b.to_string()).or_default();
            }
            g
        };
        assert!(loops(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
        assert_eq!(
            loops(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
            [["a", "b", "c"]]
        );
    }
}
