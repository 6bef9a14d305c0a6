//! Just enough of the wasm binary format to fix one export entry.

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
}
