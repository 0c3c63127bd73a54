//! Dependencies point one way. Every module of `src/` may import (`crate::...`) only
//! modules in layers below its own; `LAYERS` is that order, lowest first, read from
//! the source with its tests left out. A module that needs one above it is a missing
//! type in the lower one (see STYLE.md, "Dependencies point down").

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first. Modules in one layer import none of each other.
const LAYERS: &[&[&str]] = &[
    // Leaves: units, JSON strings, the scheduler call, the timer wheel, built-in files.
    &["units", "json", "sched", "timer", "assets"],
    // Bytes and counters: HTTP parsing and heads, WebSocket frames, sockets, counters,
    // the connection limit.
    &["http", "websocket", "net", "stats", "admission"],
    // What is published: channel names, events in every frame form, histories.
    &["channel"],
    // Where events are kept; who may see them (tokens); TLS over a socket.
    &["storage", "auth", "tls"],
    // Messages to the admin thread (browser publishes) and their answers.
    &["admin_inbox"],
    // Settings; what a subscription asks and owes; messages to the loops.
    &["config", "subscription", "bus"],
    // The bytes of each transport.
    &["transport"],
    // The connection engine: byte layer, HTTP/1.1, the event loop.
    &["engine"],
    // The two ports' applications.
    &["subscriber", "admin"],
    // A server's Redis threads; starting it all, and the command line.
    &["redis_node"],
    &["server", "cli"],
    // The command line and the configuration file resolved; running under systemd.
    &["settings", "service"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// `(module, file, imported module)` for every `crate::` path in `src/` outside tests.
fn imports(dir: &Path, found: &mut Vec<(String, String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            imports(&path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path
            .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
            .unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                found.push((module.clone(), relative.display().to_string(), name));
            }
        }
    }
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let mut found = Vec::new();
    imports(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut found,
    );
    assert!(found.len() > 50, "the scan found the imports");
    let mut wrong = BTreeSet::new();
    for (module, file, imported) in &found {
        let (Some(from), Some(to)) = (layer_of(module), layer_of(imported)) else {
            wrong.insert(format!("{file}: {module} or {imported} is in no layer"));
            continue;
        };
        if to >= from {
            wrong.insert(format!(
                "{file}: {module} (layer {from}) imports {imported} (layer {to})"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_module_is_in_a_layer() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(module) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            assert!(
                layer_of(module).is_some(),
                "{module} is in no layer of LAYERS"
            );
        }
    }
}
