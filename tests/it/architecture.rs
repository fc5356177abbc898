//! The written architecture, checked against the code: the layers and the crate owners
//! in ARCHITECTURE.md ("Layers") are read, then every `crate::…` path and every use of an
//! owned crate in src/ (test modules left out) is held against them. An import that
//! points up, a circle between top-level modules, a crate used outside its owner, or a
//! module missing from the code map fails here, unless ARCHITECTURE.md names it as an
//! exception with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What ARCHITECTURE.md's "Layers" section says.
struct Rules {
    /// Top-level module → its layer (0 is the bottom).
    layer: BTreeMap<String, usize>,
    /// (from, to) imports allowed to point up, with their reason.
    upward: BTreeSet<(String, String)>,
    /// External crate → the top-level modules allowed to use it.
    owners: BTreeMap<String, BTreeSet<String>>,
    /// (crate, module) uses outside the owner, allowed with their reason.
    foreign: BTreeSet<(String, String)>,
}

fn section(text: &str, heading: &str) -> String {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {heading:?} section"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// Backticked names in `line`.
fn ticked(line: &str) -> Vec<String> {
    line.split('`').skip(1).step_by(2).map(|s| s.to_string()).collect()
}

fn rules() -> Rules {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let layers = section(&text, "## Layers");
    // The layer list: a fenced block, top layer first, one layer per line.
    let block = layers.split("```").nth(1).expect("a fenced block of layers");
    let lines: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut layer = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let level = lines.len() - 1 - i;
        for module in line.split_whitespace() {
            assert!(
                layer.insert(module.to_string(), level).is_none(),
                "{module} is on two layers"
            );
        }
    }
    let mut upward = BTreeSet::new();
    let mut owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut foreign = BTreeSet::new();
    for line in layers.lines() {
        // Names before the dash; the reason after it may quote code too.
        let names = ticked(line.split('—').next().unwrap_or(line));
        if line.starts_with("- up: ") {
            assert!(
                names.len() == 2 && line.contains("—"),
                "an upward import names two modules and a reason: {line}"
            );
            upward.insert((names[0].clone(), names[1].clone()));
        } else if line.starts_with("- owner: ") {
            let (krate, users) = names.split_first().expect("a crate and its owners");
            owners.entry(krate.clone()).or_default().extend(users.iter().cloned());
        } else if line.starts_with("- also: ") {
            assert!(
                names.len() == 2 && line.contains("—"),
                "an exception names a crate, a module and a reason: {line}"
            );
            foreign.insert((names[0].clone(), names[1].clone()));
        }
    }
    Rules {
        layer,
        upward,
        owners,
        foreign,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without comments and its `#[cfg(test)]` modules (tests may reach
/// anywhere; a comment that names a path imports nothing).
fn without_tests(code: &str) -> String {
    let code = match code.find("#[cfg(test)]\nmod ") {
        Some(i) => &code[..i],
        None => code,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file of src/ belongs to (`main` and `lib` are their own).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Identifiers that follow `prefix` in `code` (`crate::` → `store`, `queue`, …).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        found.push(&rest[..end]);
    }
    found
}

/// Every module that `code` names through `crate::`, braces included
/// (`use crate::{a, b::c}` names `a` and `b`).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs: BTreeSet<String> = paths_after(code, "crate::")
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    let mut rest = code;
    while let Some(i) = rest.find("crate::{") {
        rest = &rest[i + "crate::{".len()..];
        let mut depth = 1;
        let mut item_start = true;
        let mut name = String::new();
        for c in rest.chars() {
            let ident = c.is_alphanumeric() || c == '_';
            if ident && item_start {
                name.push(c);
                continue;
            }
            if !name.is_empty() {
                refs.insert(std::mem::take(&mut name));
                item_start = false;
            }
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 1 => item_start = true,
                _ => {}
            }
            if depth == 0 {
                break;
            }
        }
    }
    // `crate::Error` / `crate::Result` are the error module's re-exports.
    for reexport in ["Error", "Result"] {
        if refs.remove(reexport) {
            refs.insert("error".into());
        }
    }
    refs
}

/// The modules declared `#[cfg(test)] mod NAME;` (whole files or folders of tests, such
/// as the power-loss simulation), as paths without extension: they may reach anywhere.
fn test_only_modules(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in files {
        let code = std::fs::read_to_string(file).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy();
        let parent = file.parent().unwrap();
        let dir = if stem == "mod" || stem == "lib" || stem == "main" {
            parent.to_path_buf()
        } else {
            parent.join(&*stem)
        };
        for name in paths_after(&code, "#[cfg(test)]\nmod ") {
            if code.contains(&format!("#[cfg(test)]\nmod {name};")) {
                out.push(dir.join(name));
            }
        }
    }
    out
}

/// Top-level module → (modules it imports, external crates of `owned` it uses).
fn read_src(owned: &BTreeSet<String>) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let test_only = test_only_modules(&files);
    let mut graph: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for file in files {
        if test_only
            .iter()
            .any(|t| file.starts_with(t) || file == t.with_extension("rs"))
        {
            continue;
        }
        let code = std::fs::read_to_string(&file).unwrap();
        let code = without_tests(&code);
        let me = top_module(&src, &file);
        let entry = graph.entry(me.clone()).or_default();
        entry.0.extend(crate_refs(&code).into_iter().filter(|m| *m != me));
        for krate in owned {
            if !paths_after(&code, &format!("{krate}::")).is_empty() {
                entry.1.insert(krate.clone());
            }
        }
    }
    graph
}

#[test]
fn imports_point_down_the_written_layers() {
    let rules = rules();
    let owned: BTreeSet<String> = rules.owners.keys().cloned().collect();
    let graph = read_src(&owned);
    let mut wrong = Vec::new();
    for module in graph.keys() {
        if !rules.layer.contains_key(module) {
            wrong.push(format!("`{module}` is on no layer of ARCHITECTURE.md"));
        }
    }
    for module in rules.layer.keys() {
        if !graph.contains_key(module) {
            wrong.push(format!(
                "ARCHITECTURE.md names `{module}`, which is not a module of src/"
            ));
        }
    }
    for (from, (imports, _)) in &graph {
        for to in imports {
            let (Some(a), Some(b)) = (rules.layer.get(from), rules.layer.get(to)) else {
                continue;
            };
            let pair = (from.clone(), to.clone());
            if b > a && !rules.upward.contains(&pair) {
                wrong.push(format!(
                    "`{from}` (layer {a}) imports `{to}` (layer {b}), which is above it"
                ));
            }
        }
    }
    for (from, to) in &rules.upward {
        if !graph.get(from).is_some_and(|(imports, _)| imports.contains(to)) {
            wrong.push(format!(
                "ARCHITECTURE.md allows `{from}` → `{to}`, which the code no longer has: remove the line"
            ));
        }
    }
    assert!(wrong.is_empty(), "architecture:\n{}", wrong.join("\n"));
}

#[test]
fn top_level_modules_form_no_circle() {
    let rules = rules();
    let owned: BTreeSet<String> = rules.owners.keys().cloned().collect();
    let mut graph = read_src(&owned);
    // The upward imports ARCHITECTURE.md names are known debts, each with its reason;
    // every other import must leave the graph without a circle.
    for (from, to) in &rules.upward {
        if let Some((imports, _)) = graph.get_mut(from) {
            imports.remove(to);
        }
    }
    // A module is in a circle when it can reach itself.
    let mut circles = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].0.iter().collect();
        while let Some(m) = stack.pop() {
            if m == start {
                circles.push(start.clone());
                break;
            }
            if seen.insert(m.clone())
                && let Some((next, _)) = graph.get(m)
            {
                stack.extend(next.iter());
            }
        }
    }
    assert!(
        circles.is_empty(),
        "these top-level modules sit in an import circle: {circles:?}"
    );
}

#[test]
fn owned_crates_stay_with_their_owner() {
    let rules = rules();
    let owned: BTreeSet<String> = rules.owners.keys().cloned().collect();
    assert!(!owned.is_empty(), "ARCHITECTURE.md names no crate owners");
    let graph = read_src(&owned);
    let mut wrong = Vec::new();
    for (module, (_, crates)) in &graph {
        for krate in crates {
            let allowed =
                rules.owners[krate].contains(module) || rules.foreign.contains(&(krate.clone(), module.clone()));
            if !allowed {
                wrong.push(format!(
                    "`{module}` uses `{krate}`, which belongs to {:?}",
                    rules.owners[krate]
                ));
            }
        }
    }
    for (krate, module) in &rules.foreign {
        if !graph.get(module).is_some_and(|(_, crates)| crates.contains(krate)) {
            wrong.push(format!(
                "ARCHITECTURE.md lets `{module}` use `{krate}`, which it no longer does: remove the line"
            ));
        }
    }
    assert!(wrong.is_empty(), "crate owners:\n{}", wrong.join("\n"));
}

#[test]
fn the_code_maps_list_every_module() {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let arch = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let map = section(&arch, "## Code map");
    let mut missing = Vec::new();
    for line in lib.lines() {
        let Some(module) = line.strip_prefix("pub mod ").and_then(|m| m.strip_suffix(';')) else {
            continue;
        };
        if !lib.contains(&format!("[`{module}`]")) {
            missing.push(format!("lib.rs's code map does not name `{module}`"));
        }
        let file = format!("`src/{module}.rs`");
        let dir = format!("`src/{module}/`");
        if !map.contains(&file) && !map.contains(&dir) {
            missing.push(format!("ARCHITECTURE.md's code map has no row for {file} or {dir}"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_reader_sees_braced_and_nested_imports() {
    let code = "use crate::{store::{a, b}, queue::Queue, Error};\nfn f() { crate::domain::now_ms(); }\nnotcrate::x\n";
    let refs = crate_refs(code);
    let expected: BTreeSet<String> = ["store", "queue", "error", "domain"].map(String::from).into();
    assert_eq!(refs, expected);
    assert_eq!(
        paths_after("a::rusqlite::x; rusqlite::Connection", "rusqlite::"),
        vec!["Connection"]
    );
}
