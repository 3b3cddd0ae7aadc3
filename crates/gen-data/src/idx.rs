//! The IDX format of MNIST and Fashion-MNIST, raw or gzip'd.
//!
//! The header (two zero bytes, an element-type code, the number of dimensions, then each dimension
//! as a big-endian `u32`) is checked before any payload is read: a header that claims more data
//! than the file holds, or an absurd size, is an error naming the file, never a huge allocation.

use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::{DataError, Result};

/// The largest payload accepted, in bytes (MNIST's training images are 47 MB).
pub const MAX_PAYLOAD: u64 = 1 << 31;
const MAX_DIMS: usize = 4;

/// The element values of an IDX file.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// Type code 0x08, as stored.
    U8(Vec<u8>),
    /// Any other type code (i8, i16, i32, f32, f64), converted to `f32`.
    F32(Vec<f32>),
}

/// A decoded IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: IdxData,
    /// SHA-256 of the uncompressed file, hex.
    pub sha256: String,
}

impl IdxArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads an IDX file, gzip'd or not (told apart by the gzip magic bytes).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, [`DataError::Format`] naming the file if the
/// header is malformed, the element type unknown, the size absurd, or the payload shorter or
/// longer than the header says.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(|e| DataError::io(path, e))?;
    let head = std::io::Cursor::new(magic[..got].to_vec()).chain(reader);
    if got == 2 && magic == [0x1f, 0x8b] {
        parse_idx(GzDecoder::new(head), None, path)
    } else {
        parse_idx(head, Some(file_len), path)
    }
}

/// Parses an uncompressed IDX stream. `known_len`, when given, is the stream's total length and
/// lets a lying header be caught before reading.
pub fn parse_idx<R: Read>(mut reader: R, known_len: Option<u64>, path: &Path) -> Result<IdxArray> {
    let bad = |reason: String| DataError::format(path, reason);
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad("file ends inside the IDX header".into())
        } else if e.kind() == std::io::ErrorKind::InvalidInput || e.kind() == std::io::ErrorKind::InvalidData {
            bad(format!("corrupt compressed data: {e}"))
        } else {
            DataError::io(path, e)
        }
    };
    let mut hasher = Sha256::new();
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).map_err(io)?;
    hasher.update(magic);
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: magic starts with {:#04x} {:#04x}, expected 0x00 0x00",
            magic[0], magic[1]
        )));
    }
    let elem_size: u64 = match magic[2] {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        t => return Err(bad(format!("unknown IDX element type {t:#04x}"))),
    };
    let ndims = magic[3] as usize;
    if ndims == 0 || ndims > MAX_DIMS {
        return Err(bad(format!(
            "IDX header gives {ndims} dimensions, expected 1 to {MAX_DIMS}"
        )));
    }
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        let mut d = [0u8; 4];
        reader.read_exact(&mut d).map_err(io)?;
        hasher.update(d);
        dims.push(u32::from_be_bytes(d) as u64);
    }
    let count = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let payload = count
        .and_then(|c| c.checked_mul(elem_size))
        .filter(|&p| p <= MAX_PAYLOAD)
        .ok_or_else(|| {
            bad(format!(
                "IDX header claims dimensions {dims:?}, more than the {MAX_PAYLOAD}-byte limit"
            ))
        })?;
    let header_len = 4 + 4 * ndims as u64;
    if let Some(len) = known_len
        && len != header_len + payload
    {
        return Err(bad(format!(
            "IDX header claims dimensions {dims:?} ({payload} payload bytes), but the file holds {} bytes after the header",
            len.saturating_sub(header_len)
        )));
    }
    // Read at most one byte more than announced: the buffer grows with the data actually present.
    let mut bytes = Vec::new();
    reader
        .take(payload + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                bad(format!("corrupt compressed data: {e}"))
            }
            _ => DataError::io(path, e),
        })?;
    if (bytes.len() as u64) < payload {
        return Err(bad(format!(
            "truncated: IDX header claims dimensions {dims:?} ({payload} bytes), file has {}",
            bytes.len()
        )));
    }
    if bytes.len() as u64 > payload {
        return Err(bad(format!(
            "trailing data after the {payload} bytes the IDX header announces"
        )));
    }
    hasher.update(&bytes);
    let sha256 = hex(&hasher.finalize());
    let data = match magic[2] {
        0x08 => IdxData::U8(bytes),
        0x09 => IdxData::F32(bytes.iter().map(|&b| b as i8 as f32).collect()),
        0x0B => IdxData::F32(
            bytes
                .chunks_exact(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]) as f32)
                .collect(),
        ),
        0x0C => IdxData::F32(
            bytes
                .chunks_exact(4)
                .map(|c| i32::from_be_bytes(c.try_into().expect("4")) as f32)
                .collect(),
        ),
        0x0D => IdxData::F32(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_be_bytes(c.try_into().expect("4")))
                .collect(),
        ),
        _ => IdxData::F32(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_be_bytes(c.try_into().expect("8")) as f32)
                .collect(),
        ),
    };
    Ok(IdxArray {
        dims: dims.into_iter().map(|d| d as usize).collect(),
        data,
        sha256,
    })
}

/// Encodes `u8` values as an uncompressed IDX file (used by `gen augment` and in tests).
pub fn encode_idx_u8(dims: &[usize], values: &[u8]) -> Vec<u8> {
    assert_eq!(
        dims.iter().product::<usize>(),
        values.len(),
        "encode_idx_u8: dims do not match the data"
    );
    assert!(
        !dims.is_empty() && dims.len() <= MAX_DIMS,
        "encode_idx_u8: 1 to {MAX_DIMS} dimensions"
    );
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let raw = encode_idx_u8(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        for (name, bytes) in [("a.idx", raw.clone()), ("a.idx.gz", gz(&raw))] {
            let a = read_idx(&write(dir.path(), name, &bytes)).unwrap();
            assert_eq!(a.dims, vec![2, 3]);
            assert_eq!(a.data, IdxData::U8(vec![1, 2, 3, 4, 5, 6]));
            assert_eq!(a.sha256, hex(&Sha256::digest(&raw)));
        }
    }

    #[test]
    fn reads_other_element_types() {
        let mut f = vec![0, 0, 0x0D, 1, 0, 0, 0, 2];
        f.extend_from_slice(&1.5f32.to_be_bytes());
        f.extend_from_slice(&(-2.0f32).to_be_bytes());
        let a = parse_idx(&f[..], Some(f.len() as u64), Path::new("f")).unwrap();
        assert_eq!(a.data, IdxData::F32(vec![1.5, -2.0]));
    }

    #[test]
    fn corrupt_files_give_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = encode_idx_u8(&[2, 2, 2], &[7; 8]);
        let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "header"),
            ("badmagic", vec![1, 2, 8, 1, 0, 0, 0, 1, 5], "not an IDX file"),
            ("badtype", vec![0, 0, 0x07, 1, 0, 0, 0, 1, 5], "element type"),
            ("zerodims", vec![0, 0, 0x08, 0], "dimensions"),
            ("manydims", vec![0, 0, 0x08, 9, 0, 0, 0, 1], "dimensions"),
            (
                "huge",
                vec![
                    0, 0, 0x08, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 9,
                ],
                "limit",
            ),
            ("short_header", vec![0, 0, 0x08, 3, 0, 0], "header"),
            ("truncated", good[..good.len() - 3].to_vec(), "file holds"),
            ("trailing", [good.clone(), vec![0]].concat(), "file holds"),
        ];
        // Compressed variants: the length is only known after decompression.
        let truncated_gz = gz(&good[..good.len() - 3]);
        cases.push(("truncated.gz", truncated_gz, "truncated"));
        let trailing_gz = gz(&[good.clone(), vec![1, 2]].concat());
        cases.push(("trailing.gz", trailing_gz, "trailing"));
        let lying_gz = gz(&encode_idx_u8(&[1], &[1])[..4]
            .iter()
            .chain(&[0x7f, 0xff, 0xff, 0xff])
            .copied()
            .collect::<Vec<_>>());
        cases.push(("lying.gz", lying_gz, "truncated"));
        let mut broken_gz = gz(&good);
        let mid = broken_gz.len() / 2;
        broken_gz.truncate(mid);
        cases.push(("broken.gz", broken_gz, ""));
        for (name, bytes, expect) in cases {
            let p = write(dir.path(), name, &bytes);
            let err = read_idx(&p).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name), "{name}: message does not name the file: {msg}");
            assert!(msg.contains(expect), "{name}: expected {expect:?} in {msg}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Arbitrary bytes, raw or behind a gzip header, never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), zip in any::<bool>()) {
            let data = if zip { gz(&bytes) } else { bytes.clone() };
            let _ = parse_idx(&data[..], Some(data.len() as u64), Path::new("fuzz"));
            let _ = parse_idx(GzDecoder::new(&data[..]), None, Path::new("fuzz"));
        }

        /// Mutating one byte of a valid file gives either a valid array or an error.
        #[test]
        fn mutations_never_panic(pos in 0usize..20, val in any::<u8>()) {
            let mut f = encode_idx_u8(&[2, 4], &[3; 8]);
            let pos = pos % f.len();
            f[pos] = val;
            let _ = parse_idx(&f[..], Some(f.len() as u64), Path::new("fuzz"));
        }
    }
}
