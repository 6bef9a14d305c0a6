//! Just enough of the wasm binary format to fix one export entry, drop the element section
//! and drop exports.

use anyhow::{bail, ensure};

/// Reads an unsigned LEB128 number at `*pos`.
fn leb(data: &[u8], pos: &mut usize) -> anyhow::Result<u32> {
    let mut result = 0u32;
    for shift in (0..35).step_by(7) {
        let Some(&b) = data.get(*pos) else {
            bail!("truncated wasm");
        };
        *pos += 1;
        result |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(result);
        }
    }
    bail!("bad LEB128 number")
}

/// Skips a table type or memory type's limits.
fn skip_limits(data: &[u8], pos: &mut usize) -> anyhow::Result<()> {
    let flags = *data.get(*pos).unwrap_or(&0);
    *pos += 1;
    leb(data, pos)?;
    if flags & 1 != 0 {
        leb(data, pos)?;
    }
    Ok(())
}

/// Points the table export `name` at the module's first `externref` table, in place.
/// Returns how many exports were changed (0 when already right or absent).
pub(crate) fn fix_table_export(data: &mut [u8], name: &str) -> anyhow::Result<usize> {
    ensure!(data.get(..4) == Some(b"\0asm"), "not a wasm module");
    let mut sections = std::collections::HashMap::new();
    let mut pos = 8;
    while pos < data.len() {
        let id = data[pos];
        pos += 1;
        let size = leb(data, &mut pos)? as usize;
        sections.entry(id).or_insert(pos);
        pos += size;
    }
    // Imported tables come first in the table index space.
    let mut tables = 0;
    if let Some(&start) = sections.get(&2) {
        let mut p = start;
        for _ in 0..leb(data, &mut p)? {
            for _ in 0..2 {
                let len = leb(data, &mut p)? as usize;
                p += len;
            }
            let kind = data[p];
            p += 1;
            match kind {
                0 => {
                    leb(data, &mut p)?;
                }
                1 => {
                    tables += 1;
                    p += 1;
                    skip_limits(data, &mut p)?;
                }
                2 => skip_limits(data, &mut p)?,
                3 => p += 2,
                4 => {
                    p += 1;
                    leb(data, &mut p)?;
                }
                k => bail!("unknown import kind {k}"),
            }
        }
    }
    let mut externref = None;
    if let Some(&start) = sections.get(&4) {
        let mut p = start;
        for i in 0..leb(data, &mut p)? {
            if data[p] == 0x6f {
                externref = Some(tables + i);
                break;
            }
            p += 1;
            skip_limits(data, &mut p)?;
        }
    }
    let (Some(externref), Some(&start)) = (externref, sections.get(&7)) else {
        return Ok(0);
    };
    let mut fixed = 0;
    let mut p = start;
    for _ in 0..leb(data, &mut p)? {
        let len = leb(data, &mut p)? as usize;
        let export = data.get(p..p + len).unwrap_or_default().to_vec();
        p += len;
        let kind = data[p];
        p += 1;
        let index_at = p;
        let index = leb(data, &mut p)?;
        if kind == 1 && export == name.as_bytes() && index != externref {
            ensure!(
                p - index_at == 1 && externref < 0x80,
                "multi-byte table index"
            );
            data[index_at] = externref as u8;
            fixed += 1;
        }
    }
    Ok(fixed)
}

/// Appends `n` as unsigned LEB128.
fn push_leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The module without its element section (the funcref table's initial entries) and
/// without the exports named in `drop_exports`; and how many bytes went.
///
/// Elements: Rust fills the funcref table only with functions whose address is taken; in
/// the SDK the only one left is `<u32 as Display>::fmt`, referenced by `alloc`'s
/// out-of-memory message (the panic handler traps without formatting), and a table entry
/// keeps it — and `core::fmt` behind it — in the binary: binaryen 108 treats active
/// segments as roots. The build checks after `wasm-opt` that no `call_indirect` is left
/// (`sdk-wasm/build`), so no reachable code could use the table.
///
/// Exports: wasm-bindgen exports what its own glue may call (`__wbg_spoor_free`,
/// `__wbindgen_free`, …); js/core.js's glue never does, and what an export keeps alive
/// (the tracker's whole drop glue, for one) stays in the binary.
pub(crate) fn prune(data: &[u8], drop_exports: &[String]) -> anyhow::Result<(Vec<u8>, usize)> {
    ensure!(data.get(..4) == Some(b"\0asm"), "not a wasm module");
    let mut out = data.get(..8).unwrap_or_default().to_vec();
    let mut pos = 8;
    while pos < data.len() {
        let id = data[pos];
        let mut p = pos + 1;
        let size = leb(data, &mut p)? as usize;
        let end = p + size;
        ensure!(end <= data.len(), "truncated wasm");
        match id {
            9 => {}
            7 => {
                let mut kept = Vec::new();
                let mut n = 0;
                for _ in 0..leb(data, &mut p)? {
                    let at = p;
                    let len = leb(data, &mut p)? as usize;
                    let name = data.get(p..p + len).unwrap_or_default();
                    p += len + 1;
                    leb(data, &mut p)?;
                    if !drop_exports.iter().any(|d| d.as_bytes() == name) {
                        kept.extend_from_slice(&data[at..p]);
                        n += 1;
                    }
                }
                ensure!(p == end, "malformed export section");
                let mut body = Vec::new();
                push_leb(&mut body, n);
                body.extend(kept);
                out.push(7);
                push_leb(&mut out, body.len());
                out.extend(body);
            }
            _ => out.extend_from_slice(&data[pos..end]),
        }
        pos = end;
    }
    let dropped = data.len() - out.len();
    Ok((out, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a funcref and an externref table, exporting the externref one as index 0
    /// (what binaryen 108 writes).
    fn broken() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // table section: 2 tables: funcref min 1, externref min 2
        m.extend([4, 7, 2, 0x70, 0, 1, 0x6f, 0, 2]);
        // export section: "t" table 0
        m.extend([7, 5, 1, 1, b't', 1, 0]);
        m
    }

    #[test]
    fn points_the_export_at_the_externref_table() {
        let mut m = broken();
        assert_eq!(fix_table_export(&mut m, "t").unwrap(), 1);
        assert_eq!(*m.last().unwrap(), 1);
        assert_eq!(fix_table_export(&mut m, "t").unwrap(), 0, "idempotent");
        assert_eq!(fix_table_export(&mut broken(), "other").unwrap(), 0);
        assert!(fix_table_export(&mut b"nope".to_vec(), "t").is_err());
    }

    #[test]
    fn drops_the_element_section_and_named_exports() {
        let mut m = broken();
        // element section: 1 active segment at i32.const 1 with function 0
        m.extend([9, 7, 1, 0, 0x41, 1, 0x0b, 1, 0]);
        // custom section "n"
        m.extend([0, 2, 1, b'n']);
        let (out, n) = prune(&m, &[]).unwrap();
        assert_eq!(n, 9);
        let mut want = broken();
        want.extend([0, 2, 1, b'n']);
        assert_eq!(out, want);
        assert_eq!(prune(&out, &[]).unwrap(), (want.clone(), 0), "idempotent");
        // dropping the export "t" leaves an empty export section
        let (out, n) = prune(&want, &["t".into(), "other".into()]).unwrap();
        assert_eq!(n, 4);
        let mut empty = broken();
        empty.truncate(empty.len() - 7);
        empty.extend([7, 1, 0, 0, 2, 1, b'n']);
        assert_eq!(out, empty);
        assert!(prune(b"nope", &[]).is_err());
        m.truncate(m.len() - 6);
        assert!(prune(&m, &[]).is_err(), "truncated");
    }
}
