//! Checks js/core.js's hand-written wasm glue against the glue wasm-bindgen generates for
//! the same wasm: every import needs a handler of the same arity, and the externref table
//! must be set up the same way — for the shipped wasm (built without `reference-types`)
//! that means not at all.

use anyhow::{bail, ensure};

/// `name: function(params)` and `name: (params) =>` entries, each with its parameter count;
/// `name` without the `__wbg_` prefix and the `_<16 hex digits>` suffix wasm-bindgen adds to
/// imports.
fn handlers(js: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for line in js.lines() {
        let line = line.trim_start();
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let rest = rest.trim_start();
        let arrow = !rest.starts_with("function");
        let Some((params, after)) = rest
            .strip_prefix("function")
            .unwrap_or(rest)
            .trim_start()
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
        else {
            continue;
        };
        if arrow && !after.trim_start().starts_with("=>") {
            continue;
        }
        let params = params.trim();
        let mut name = name.strip_prefix("__wbg_").unwrap_or(name);
        if let Some((base, hash)) = name.rsplit_once('_')
            && hash.len() == 16
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            name = base;
        }
        let arity = if params.is_empty() {
            0
        } else {
            params.split(',').count()
        };
        out.push((name.to_string(), arity));
    }
    out
}

/// The `table.set(…)` lines of a JS text, whitespace removed.
fn table_setup(js: &str) -> Vec<String> {
    js.lines()
        .map(|l| l.split_whitespace().collect::<String>())
        .filter(|l| l.starts_with("table.set(") || l.starts_with("t.set("))
        .map(|l| {
            l.trim_start_matches("table.")
                .trim_start_matches("t.")
                .to_string()
        })
        .collect()
}

/// Fails unless `ours` (js/core.js) handles every import of `generated` (wasm-bindgen's
/// no-modules glue for the wasm being shipped) with the same number of parameters and sets
/// up the externref table identically (neither sets one up when the wasm has none).
/// Returns the number of imports checked.
pub(crate) fn check(generated: &str, ours: &str) -> anyhow::Result<usize> {
    let start = generated
        .find("function __wbg_get_imports")
        .unwrap_or_default();
    let end = generated[start..]
        .find("return {")
        .map_or(generated.len(), |e| start + e);
    let imports = handlers(&generated[start..end]);
    ensure!(
        !imports.is_empty(),
        "no imports found in wasm-bindgen's glue"
    );
    let mine = handlers(ours);
    for (name, arity) in &imports {
        match mine.iter().find(|(n, _)| n == name) {
            Some((_, a)) if a == arity => {}
            Some((_, a)) => {
                bail!("js/core.js: `{name}` takes {a} parameters, the wasm passes {arity}")
            }
            None => bail!("js/core.js has no handler for the wasm import `{name}`"),
        }
    }
    let (want, have) = (table_setup(generated), table_setup(ours));
    ensure!(
        want == have,
        "externref table setup differs: wasm-bindgen {want:?}, js/core.js {have:?} (the \
         shipped wasm has no externref table: sdk-wasm/build compiles it without \
         reference-types)"
    );
    Ok(imports.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = r#"
    function __wbg_get_imports() {
        const import0 = {
            __proto__: null,
            __wbg___wbindgen_throw_4c88d8bf264fd984: function(arg0, arg1) {
                throw new Error(getStringFromWasm0(arg0, arg1));
            },
            __wbg_now_364b6507aeb87259: function(arg0) {
                return arg0.now();
            },
            __wbindgen_init_externref_table: function() {
                const table = wasm.__wbindgen_externrefs;
                table.set(0, undefined);
                table.set(1024, undefined);
            },
        };
        return {
            __proto__: null,
            "./spoor_bg.js": import0,
        };
    }
    const other = { unrelated: function(a) {} };
    "#;

    #[test]
    fn matching_glue_passes() {
        let ours = "F = {\n  __wbindgen_throw: function (p, l) {\n  },\n  now: function (h) {\n  },\n  \
                    __wbindgen_init_externref_table: function () {\n    var t = X.__wbindgen_externrefs;\n    \
                    t.set(0, undefined);\n    t.set(1024, undefined);\n  },\n  extra: function () {}\n};";
        assert_eq!(check(GENERATED, ours).unwrap(), 3);
    }

    #[test]
    fn arrow_handlers_count_too() {
        let ours = "F = {\n  __wbindgen_throw: (p, l) => {\n  },\n  now: (h) => h.now(),\n  \
                    __wbindgen_init_externref_table: () => {\n    var t = X.__wbindgen_externrefs;\n    \
                    t.set(0, undefined);\n    t.set(1024, undefined);\n  },\n  extra: 1 + (2)\n};";
        assert_eq!(check(GENERATED, ours).unwrap(), 3);
        let err = check(GENERATED, &ours.replace("now: (h)", "now: (h, x)"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 parameters"), "{err}");
        // A parenthesised value is no handler.
        let err = check(GENERATED, &ours.replace("now: (h) =>", "now: (h) +"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`now`"), "{err}");
    }

    #[test]
    fn missing_handlers_arities_and_table_setup_fail() {
        let base = "__wbindgen_throw: function (p, l) {\n__wbindgen_init_externref_table: function () {\n\
                    t.set(0, undefined);\nt.set(1024, undefined);\n";
        let err = check(GENERATED, base).unwrap_err().to_string();
        assert!(err.contains("`now`"), "{err}");
        let err = check(GENERATED, &(base.to_string() + "now: function (h, x) {\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 parameters"), "{err}");
        let ours = base.replace("1024", "128") + "now: function (h) {\n";
        let err = check(GENERATED, &ours).unwrap_err().to_string();
        assert!(err.contains("externref table"), "{err}");
        assert!(check("", base).is_err());
    }

    #[test]
    fn a_wasm_without_externref_table_needs_glue_without_one() {
        // What wasm-bindgen generates for a wasm built without reference-types: no table
        // setup import.
        let (head, rest) = GENERATED
            .split_once("            __wbindgen_init_externref_table")
            .unwrap();
        let generated = head.to_string() + rest.split_once("            },\n").unwrap().1;
        let ours = "__wbindgen_throw: function (p, l) {\nnow: function (h) {\n";
        assert_eq!(check(&generated, ours).unwrap(), 2);
        let with_table = ours.to_string() + "t.set(0, undefined);\n";
        let err = check(&generated, &with_table).unwrap_err().to_string();
        assert!(err.contains("externref table"), "{err}");
        // A wasm with the table again (built with reference-types) fails the glue without.
        let ours = ours.to_string() + "__wbindgen_init_externref_table: function () {\n";
        let err = check(GENERATED, &ours).unwrap_err().to_string();
        assert!(err.contains("reference-types"), "{err}");
    }
}
