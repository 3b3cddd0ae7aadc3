//! The `.genz` file format: latent codes, quantised and bit-packed, for `gen compress` and `gen decompress`.
//!
//! [`CompressedCodes::quantize`] takes `n` latent codes of `d_latent` values each (row-major),
//! finds each dimension's range `[min, max]` over the `n` codes,
//! and maps every value to the nearest of `2^bits` evenly spaced levels of that range.
//! [`CompressedCodes::dequantize`] maps the levels back; each value comes back within half a step,
//! `(max - min) / (2^bits - 1) / 2`, of the original (plus the rounding of the result to `f32`).
//! A dimension whose values are all equal (`max == min`) comes back exactly.
//!
//! # Layout
//!
//! All integers and floats are little-endian; `d` is `d_latent` and `P` is the payload length.
//!
//! | Offset         | Size   | Field                                                                    |
//! |----------------|--------|--------------------------------------------------------------------------|
//! | 0              | 4      | magic `b"GENZ"`                                                          |
//! | 4              | 2      | `u16` format version, [`FORMAT_VERSION`] (1)                             |
//! | 6              | 1      | `u8` bits per value, 1 to 16                                             |
//! | 7              | 1      | `u8` flags, reserved, must be 0                                          |
//! | 8              | 4      | `u32` n, the number of codes (images), > 0                               |
//! | 12             | 4      | `u32` d_latent, values per code, > 0                                     |
//! | 16             | 12     | 3 × `u32` shape of the encoded images: channels, height, width           |
//! | 28             | 32     | hash of the model that made the codes (the caller's, e.g. a SHA-256)     |
//! | 60             | 4d     | d × `f32` per-dimension minimum                                          |
//! | 60 + 4d        | 4d     | d × `f32` per-dimension maximum (finite, ≥ the minimum)                  |
//! | 60 + 8d        | 8      | `u64` payload length P, which must be ⌈n · d · bits / 8⌉                 |
//! | 68 + 8d        | P      | payload: n · d levels in row-major order, `bits` bits each               |
//! | 68 + 8d + P    | 32     | SHA-256 of every byte before it                                          |
//!
//! The file is `100 + 8d + P` bytes long; nothing may follow the checksum.
//! The payload packs each level most significant bit first, with no padding between values;
//! only the last byte is padded, with zero bits.
//!
//! [`CompressedCodes::from_bytes`] checks the magic and the version first, then that every part is present
//! (before it allocates anything for that part), then the checksum, and only then the header's values.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The first four bytes of every compressed file.
pub const MAGIC: [u8; 4] = *b"GENZ";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// The largest supported number of bits per value.
pub const MAX_BITS: u8 = 16;

/// Bytes before the ranges: magic, version, bits, flags, n, d_latent, shape and model hash.
const HEADER_LEN: usize = 60;

/// Bytes of the payload length field.
const PAYLOAD_LEN_FIELD: usize = 8;

/// Bytes of the trailing SHA-256.
const CHECKSUM_LEN: usize = 32;

/// A part of a compressed file, named in [`CompressError::Truncated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The fixed-size header (magic to model hash).
    Header,
    /// The per-dimension minima and maxima.
    Ranges,
    /// The `u64` payload length field.
    PayloadLength,
    /// The bit-packed codes.
    Payload,
    /// The trailing SHA-256.
    Checksum,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Ranges => "ranges",
            Part::PayloadLength => "payload length",
            Part::Payload => "payload",
            Part::Checksum => "checksum",
        })
    }
}

/// Everything that can go wrong while quantising codes or reading and writing a compressed file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a gen compressed file (it starts with \"{}\", expected \"GENZ\")", found.escape_ascii())]
    BadMagic {
        /// The first (up to four) bytes found.
        found: Vec<u8>,
    },
    /// The format version is not [`FORMAT_VERSION`].
    #[error("unsupported format version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    /// The reserved flags byte is not zero.
    #[error("unsupported flags 0x{0:02x} (format version {FORMAT_VERSION} defines none)")]
    UnsupportedFlags(u8),
    /// The bytes end before a part is complete.
    #[error("truncated file: the {part} needs at least {expected} bytes, only {present} present")]
    Truncated {
        /// The part that is incomplete.
        part: Part,
        /// The length the file needs to hold that part.
        expected: u64,
        /// The length it has.
        present: u64,
    },
    /// Bytes follow the checksum.
    #[error("{} trailing bytes after the checksum (the file should be {expected} bytes, it is {present})", present - expected)]
    TrailingBytes {
        /// The length the header implies.
        expected: u64,
        /// The length found.
        present: u64,
    },
    /// The stored SHA-256 does not match the content.
    #[error(
        "corrupt file: SHA-256 mismatch (stored {}…, computed {}…)",
        hex_prefix(stored),
        hex_prefix(computed)
    )]
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: [u8; 32],
        /// The checksum of the bytes before it.
        computed: [u8; 32],
    },
    /// The payload length does not match `n`, `d_latent` and `bits`.
    #[error("payload is {found} bytes, but n = {n} codes of d_latent = {d_latent} at {bits} bits need {expected}")]
    PayloadLength {
        /// The length stored in the file.
        found: u64,
        /// ⌈n · d_latent · bits / 8⌉.
        expected: u128,
        /// Number of codes.
        n: u64,
        /// Values per code.
        d_latent: u64,
        /// Bits per value.
        bits: u8,
    },
    /// The bits per value are outside `1..=16`.
    #[error("bits must be in 1..={MAX_BITS}, got {0}")]
    BitsOutOfRange(u8),
    /// A stored range is not finite or has `min > max`.
    #[error("invalid range for latent dimension {dim}: min {min}, max {max} (both must be finite, with min <= max)")]
    InvalidRange {
        /// The dimension (0-based).
        dim: usize,
        /// The stored minimum.
        min: f32,
        /// The stored maximum.
        max: f32,
    },
    /// A code to quantise is NaN or infinite.
    #[error("code {row}, dimension {dim} is {value}; codes must be finite")]
    NonFiniteCode {
        /// The code (0-based).
        row: usize,
        /// The dimension (0-based).
        dim: usize,
        /// The offending value.
        value: f32,
    },
    /// A count that must be positive is zero.
    #[error("{name} must be > 0, got 0")]
    Zero {
        /// `"n"` or `"d_latent"`.
        name: &'static str,
    },
    /// A count does not fit the format's `u32` field.
    #[error("{name} must fit in 32 bits, got {value}")]
    TooLarge {
        /// `"n"` or `"d_latent"`.
        name: &'static str,
        /// The value given.
        value: usize,
    },
    /// The number of code values given is not `n · d_latent`.
    #[error("got {found} code values, but n × d_latent = {n} × {d_latent} = {expected}")]
    CodesLength {
        /// The slice length.
        found: usize,
        /// `n · d_latent`.
        expected: u128,
        /// Number of codes.
        n: usize,
        /// Values per code.
        d_latent: usize,
    },
    /// The codes were made by a model other than the one given.
    #[error(
        "codes were made by another model (hash {}… expected {}…)",
        hex_prefix(found),
        hex_prefix(expected)
    )]
    ModelMismatch {
        /// The hash stored with the codes.
        found: [u8; 32],
        /// The hash of the model given.
        expected: [u8; 32],
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`"cannot read"`, ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was read but its content is rejected.
    #[error("{path}: {source}")]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<CompressError>,
    },
}

/// The first four bytes of a hash as eight hex digits.
fn hex_prefix(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Latent codes quantised to `bits` bits per value, with everything needed to write, check and decode them.
///
/// The fields are private so that a value always holds consistent sizes;
/// build one with [`quantize`](Self::quantize) or [`from_bytes`](Self::from_bytes).
#[derive(Clone, PartialEq)]
pub struct CompressedCodes {
    model_hash: [u8; 32],
    bits: u8,
    n: usize,
    d_latent: usize,
    mins: Vec<f32>,
    maxs: Vec<f32>,
    shape: [u32; 3],
    payload: Vec<u8>,
}

impl fmt::Debug for CompressedCodes {
    /// Shows the payload's length, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompressedCodes")
            .field("model_hash", &hex_prefix(&self.model_hash))
            .field("bits", &self.bits)
            .field("n", &self.n)
            .field("d_latent", &self.d_latent)
            .field("mins", &self.mins)
            .field("maxs", &self.maxs)
            .field("shape", &self.shape)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// ⌈n · d_latent · bits / 8⌉, without overflow.
fn payload_len(n: u64, d_latent: u64, bits: u8) -> u128 {
    (u128::from(n) * u128::from(d_latent) * u128::from(bits)).div_ceil(8)
}

/// The largest level at `bits` bits: `2^bits - 1`.
fn max_level(bits: u8) -> u32 {
    (1u32 << bits) - 1
}

fn check_bits(bits: u8) -> Result<(), CompressError> {
    if (1..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(CompressError::BitsOutOfRange(bits))
    }
}

impl CompressedCodes {
    /// Quantises `n` codes of `d_latent` values each, given row-major in `codes`, to `bits` bits per value.
    ///
    /// Each dimension's range is its minimum and maximum over the `n` codes;
    /// each value becomes the nearest of `2^bits` evenly spaced levels of that range.
    /// `shape` is (channels, height, width) of the encoded images and `model_hash` identifies the model;
    /// both are stored as given.
    ///
    /// # Errors
    /// [`CompressError::BitsOutOfRange`] unless `bits` is in `1..=16`,
    /// [`CompressError::Zero`] if `n` or `d_latent` is 0, [`CompressError::TooLarge`] if either exceeds `u32`,
    /// [`CompressError::CodesLength`] if `codes.len() != n * d_latent`,
    /// and [`CompressError::NonFiniteCode`] for a NaN or infinite value.
    pub fn quantize(
        codes: &[f32],
        n: usize,
        d_latent: usize,
        bits: u8,
        shape: [u32; 3],
        model_hash: [u8; 32],
    ) -> Result<Self, CompressError> {
        check_bits(bits)?;
        for (name, value) in [("n", n), ("d_latent", d_latent)] {
            if value == 0 {
                return Err(CompressError::Zero { name });
            }
            if u32::try_from(value).is_err() {
                return Err(CompressError::TooLarge { name, value });
            }
        }
        let expected = n as u128 * d_latent as u128;
        if codes.len() as u128 != expected {
            return Err(CompressError::CodesLength {
                found: codes.len(),
                expected,
                n,
                d_latent,
            });
        }

        let mut mins = vec![f32::INFINITY; d_latent];
        let mut maxs = vec![f32::NEG_INFINITY; d_latent];
        for (row, code) in codes.chunks_exact(d_latent).enumerate() {
            for (dim, &value) in code.iter().enumerate() {
                if !value.is_finite() {
                    return Err(CompressError::NonFiniteCode { row, dim, value });
                }
                mins[dim] = mins[dim].min(value);
                maxs[dim] = maxs[dim].max(value);
            }
        }

        let top = max_level(bits);
        let ranges: Vec<(f64, f64)> = mins
            .iter()
            .zip(&maxs)
            .map(|(&lo, &hi)| (f64::from(lo), f64::from(hi) - f64::from(lo)))
            .collect();
        let mut writer = BitWriter::with_capacity(payload_len(n as u64, d_latent as u64, bits) as usize);
        for code in codes.chunks_exact(d_latent) {
            for (&value, &(lo, range)) in code.iter().zip(&ranges) {
                let level = if range > 0.0 {
                    ((f64::from(value) - lo) / range * f64::from(top))
                        .round()
                        .clamp(0.0, f64::from(top)) as u32
                } else {
                    0
                };
                writer.push(level, bits);
            }
        }

        Ok(Self {
            model_hash,
            bits,
            n,
            d_latent,
            mins,
            maxs,
            shape,
            payload: writer.finish(),
        })
    }

    /// The codes, decoded: `n × d_latent` values, row-major.
    ///
    /// Each value lies within half a step, `(max - min) / (2^bits - 1) / 2` of its dimension,
    /// of the value that was quantised (plus the rounding of the result to `f32`), and inside `[min, max]`.
    pub fn dequantize(&self) -> Vec<f32> {
        let top = f64::from(max_level(self.bits));
        let ranges: Vec<(f64, f64, f64)> = self
            .mins
            .iter()
            .zip(&self.maxs)
            .map(|(&lo, &hi)| (f64::from(lo), f64::from(hi), f64::from(hi) - f64::from(lo)))
            .collect();
        let mut reader = BitReader::new(&self.payload);
        let mut out = Vec::with_capacity(self.n * self.d_latent);
        for _ in 0..self.n {
            for &(lo, hi, range) in &ranges {
                let level = f64::from(reader.pull(self.bits));
                out.push((lo + range * (level / top)).clamp(lo, hi) as f32);
            }
        }
        out
    }

    /// The 32-byte hash, given to [`quantize`](Self::quantize), of the model that made the codes.
    pub fn model_hash(&self) -> &[u8; 32] {
        &self.model_hash
    }

    /// Bits per quantised value, 1 to 16.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The number of codes (images).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per code.
    pub fn d_latent(&self) -> usize {
        self.d_latent
    }

    /// Per-dimension minima, `d_latent` values.
    pub fn mins(&self) -> &[f32] {
        &self.mins
    }

    /// Per-dimension maxima, `d_latent` values.
    pub fn maxs(&self) -> &[f32] {
        &self.maxs
    }

    /// (channels, height, width) of the images that were encoded.
    pub fn shape(&self) -> [u32; 3] {
        self.shape
    }

    /// The bit-packed levels, most significant bit first, `⌈n · d_latent · bits / 8⌉` bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Checks that the codes were made by the model whose hash is `model_hash`.
    ///
    /// # Errors
    /// [`CompressError::ModelMismatch`], naming both hashes' first eight hex digits, when they differ.
    pub fn check_model(&self, model_hash: &[u8; 32]) -> Result<(), CompressError> {
        if &self.model_hash == model_hash {
            Ok(())
        } else {
            Err(CompressError::ModelMismatch {
                found: self.model_hash,
                expected: *model_hash,
            })
        }
    }

    /// The length of [`to_bytes`](Self::to_bytes)'s result: `100 + 8 · d_latent + payload`.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 8 * self.d_latent + PAYLOAD_LEN_FIELD + self.payload.len() + CHECKSUM_LEN
    }

    /// Bits per image of the whole file, header and checksum included.
    pub fn bits_per_image(&self) -> f64 {
        self.encoded_len() as f64 * 8.0 / self.n as f64
    }

    /// Bits per image of the payload alone: `d_latent · bits`.
    pub fn payload_bits_per_image(&self) -> f64 {
        self.d_latent as f64 * f64::from(self.bits)
    }

    /// The file's bytes, laid out as the [module documentation](crate::compress) describes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(self.bits);
        out.push(0);
        // Both fit: quantize and from_bytes check them.
        out.extend_from_slice(&(self.n as u32).to_le_bytes());
        out.extend_from_slice(&(self.d_latent as u32).to_le_bytes());
        for s in self.shape {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.extend_from_slice(&self.model_hash);
        for v in self.mins.iter().chain(&self.maxs) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.payload);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Parses a file's bytes.
    ///
    /// Nothing is allocated for a part before the bytes for it are known to be present,
    /// so a short file that claims huge sizes is rejected cheaply.
    ///
    /// # Errors
    /// [`CompressError::BadMagic`], [`CompressError::UnsupportedVersion`], [`CompressError::Truncated`]
    /// (naming the incomplete part), [`CompressError::TrailingBytes`], [`CompressError::ChecksumMismatch`],
    /// and, for a file whose checksum matches but whose values are wrong,
    /// [`CompressError::UnsupportedFlags`], [`CompressError::BitsOutOfRange`], [`CompressError::Zero`],
    /// [`CompressError::PayloadLength`] or [`CompressError::InvalidRange`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CompressError> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(CompressError::BadMagic {
                found: bytes[..magic_len].to_vec(),
            });
        }
        let mut r = Reader { bytes, pos: 0 };
        let header = r.take(HEADER_LEN, Part::Header)?;
        let version = u16::from_le_bytes([header[4], header[5]]);
        if version != FORMAT_VERSION {
            return Err(CompressError::UnsupportedVersion(version));
        }
        let bits = header[6];
        let flags = header[7];
        let u32_at = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let n = u32_at(8);
        let d_latent = u32_at(12);
        let shape = [u32_at(16), u32_at(20), u32_at(24)];
        let mut model_hash = [0u8; 32];
        model_hash.copy_from_slice(&header[28..60]);

        // At most 8 · (2^32 - 1) bytes; checked against what is left before slicing.
        let ranges = r.take_u64(8 * u64::from(d_latent), Part::Ranges)?;
        let len_field = r.take(PAYLOAD_LEN_FIELD, Part::PayloadLength)?;
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(len_field);
        let stored_payload_len = u64::from_le_bytes(len_bytes);
        let payload = r.take_u64(stored_payload_len, Part::Payload)?;
        let body_len = r.pos;
        let checksum = r.take(CHECKSUM_LEN, Part::Checksum)?;
        if bytes.len() > r.pos {
            return Err(CompressError::TrailingBytes {
                expected: r.pos as u64,
                present: bytes.len() as u64,
            });
        }
        let computed: [u8; 32] = Sha256::digest(&bytes[..body_len]).into();
        if checksum != computed {
            let mut stored = [0u8; 32];
            stored.copy_from_slice(checksum);
            return Err(CompressError::ChecksumMismatch { stored, computed });
        }

        if flags != 0 {
            return Err(CompressError::UnsupportedFlags(flags));
        }
        check_bits(bits)?;
        for (name, value) in [("n", n), ("d_latent", d_latent)] {
            if value == 0 {
                return Err(CompressError::Zero { name });
            }
        }
        let expected = payload_len(n.into(), d_latent.into(), bits);
        if u128::from(stored_payload_len) != expected {
            return Err(CompressError::PayloadLength {
                found: stored_payload_len,
                expected,
                n: n.into(),
                d_latent: d_latent.into(),
                bits,
            });
        }
        let d = d_latent as usize;
        let floats: Vec<f32> = ranges
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (mins, maxs) = floats.split_at(d);
        for (dim, (&min, &max)) in mins.iter().zip(maxs).enumerate() {
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return Err(CompressError::InvalidRange { dim, min, max });
            }
        }

        Ok(Self {
            model_hash,
            bits,
            n: n as usize,
            d_latent: d,
            mins: mins.to_vec(),
            maxs: maxs.to_vec(),
            shape,
            payload: payload.to_vec(),
        })
    }

    /// Writes the file at `path` atomically: to a temporary file in the same folder, then renamed over `path`.
    ///
    /// # Errors
    /// [`CompressError::Io`], naming the path, when the folder cannot be written or the rename fails.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), CompressError> {
        let path = path.as_ref();
        let io = |action, source| CompressError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let Some(name) = path.file_name() else {
            return Err(io(
                "cannot write",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"),
            ));
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = path.with_file_name(tmp_name);

        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(&self.to_bytes())?;
                file.sync_all()
            })
            .map_err(|e| io("cannot write a temporary file next to", e))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io("cannot rename a temporary file to", e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`CompressError::Io`] when it cannot be read, and [`CompressError::File`],
    /// wrapping a [`from_bytes`](Self::from_bytes) error, when its content is rejected; both name the path.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, CompressError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| CompressError::Io {
            action: "cannot read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| CompressError::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }
}

/// A cursor over a file's bytes that reports which part ran short.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, part: Part) -> Result<&'a [u8], CompressError> {
        self.take_u64(len as u64, part)
    }

    /// The next `len` bytes, checked against what is left before anything is sliced or allocated.
    fn take_u64(&mut self, len: u64, part: Part) -> Result<&'a [u8], CompressError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if len > left {
            return Err(CompressError::Truncated {
                part,
                expected: (self.pos as u64).saturating_add(len),
                present: self.bytes.len() as u64,
            });
        }
        // len <= left, so it fits in usize.
        let slice = &self.bytes[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(slice)
    }
}

/// Packs values of up to 16 bits, most significant bit first.
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    pending: u8,
}

impl BitWriter {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            out: Vec::with_capacity(capacity),
            acc: 0,
            pending: 0,
        }
    }

    /// Appends the low `bits` bits of `value`.
    fn push(&mut self, value: u32, bits: u8) {
        // At most 7 pending bits plus 16 new ones: fits in the u32 accumulator.
        self.acc = (self.acc << bits) | (value & max_level(bits));
        self.pending += bits;
        while self.pending >= 8 {
            self.pending -= 8;
            self.out.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1 << self.pending) - 1;
    }

    /// The packed bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            self.out.push((self.acc << (8 - self.pending)) as u8);
        }
        self.out
    }
}

/// Unpacks values written by [`BitWriter`].
struct BitReader<'a> {
    bytes: std::slice::Iter<'a, u8>,
    acc: u32,
    pending: u8,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes: bytes.iter(),
            acc: 0,
            pending: 0,
        }
    }

    /// The next `bits` bits as a number; zero bits past the end.
    fn pull(&mut self, bits: u8) -> u32 {
        while self.pending < bits {
            self.acc = (self.acc << 8) | u32::from(self.bytes.next().copied().unwrap_or(0));
            self.pending += 8;
        }
        self.pending -= bits;
        let value = (self.acc >> self.pending) & max_level(bits);
        self.acc &= (1 << self.pending) - 1;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH_A: [u8; 32] = [0xab; 32];
    const HASH_B: [u8; 32] = [0xef; 32];

    /// Half a step of each dimension plus the f32 rounding of the decoded value.
    fn assert_within_bound(c: &CompressedCodes, original: &[f32]) {
        let decoded = c.dequantize();
        assert_eq!(decoded.len(), original.len());
        let top = f64::from(max_level(c.bits()));
        for (i, (&x, &y)) in original.iter().zip(&decoded).enumerate() {
            let dim = i % c.d_latent();
            let (lo, hi) = (f64::from(c.mins()[dim]), f64::from(c.maxs()[dim]));
            let half_step = (hi - lo) / top / 2.0;
            let tol = half_step * (1.0 + 1e-9) + lo.abs().max(hi.abs()) * f64::from(f32::EPSILON);
            let err = (f64::from(x) - f64::from(y)).abs();
            assert!(
                err <= tol,
                "value {i} (dim {dim}): {x} decoded as {y}, error {err} > bound {tol} at {} bits",
                c.bits()
            );
            assert!(
                lo <= f64::from(y) && f64::from(y) <= hi,
                "value {i}: {y} outside [{lo}, {hi}]"
            );
        }
    }

    /// Deterministic, irregular test codes.
    fn sample_codes(n: usize, d: usize) -> Vec<f32> {
        (0..n * d)
            .map(|i| (i as f32 * 0.618_034).sin() * 3.7 + (i % d) as f32 * 10.0)
            .collect()
    }

    fn sample_file() -> Vec<u8> {
        CompressedCodes::quantize(&sample_codes(3, 4), 3, 4, 5, [1, 8, 8], HASH_A)
            .unwrap()
            .to_bytes()
    }

    /// A file body with the given fields and a correct checksum.
    #[allow(clippy::too_many_arguments)]
    fn sealed(
        version: u16,
        bits: u8,
        flags: u8,
        n: u32,
        d: u32,
        ranges: &[f32],
        payload_len: u64,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&version.to_le_bytes());
        f.extend_from_slice(&[bits, flags]);
        for v in [n, d, 1, 1, 1] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&HASH_A);
        for v in ranges {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&payload_len.to_le_bytes());
        f.extend_from_slice(payload);
        let sum = Sha256::digest(&f);
        f.extend_from_slice(&sum);
        f
    }

    #[test]
    fn round_trips_at_several_bit_widths() {
        let (n, d) = (7, 5);
        let codes = sample_codes(n, d);
        for bits in [1, 3, 8, 12, 16] {
            let c = CompressedCodes::quantize(&codes, n, d, bits, [3, 32, 32], HASH_A).unwrap();
            assert_eq!(c.payload().len(), (n * d * bits as usize).div_ceil(8));
            let bytes = c.to_bytes();
            assert_eq!(bytes.len(), c.encoded_len());
            assert_eq!(bytes.len(), 100 + 8 * d + c.payload().len());
            let back = CompressedCodes::from_bytes(&bytes).unwrap();
            assert_eq!(back, c);
            assert_eq!(back.shape(), [3, 32, 32]);
            assert_eq!(back.model_hash(), &HASH_A);
            assert_within_bound(&back, &codes);
        }
    }

    #[test]
    fn extremes_decode_exactly() {
        let codes = [-2.5, 0.1, 7.25, 3.0];
        for bits in [1, 4, 16] {
            let c = CompressedCodes::quantize(&codes, 4, 1, bits, [1, 1, 1], HASH_A).unwrap();
            let y = c.dequantize();
            assert_eq!((y[0], y[2]), (-2.5, 7.25), "{bits} bits");
        }
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let c = CompressedCodes::quantize(&[0.0, 1.0, 1.0, 0.0], 2, 2, 3, [1, 2, 3], HASH_A).unwrap();
        let b = c.to_bytes();
        assert_eq!(&b[0..4], b"GENZ");
        assert_eq!(&b[4..6], &[1, 0]);
        assert_eq!(b[6], 3);
        assert_eq!(b[7], 0);
        assert_eq!(&b[8..12], &2u32.to_le_bytes());
        assert_eq!(&b[12..16], &2u32.to_le_bytes());
        assert_eq!(&b[16..28], &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&b[28..60], &HASH_A);
        assert_eq!(&b[60..68], &[0.0f32.to_le_bytes(), 0.0f32.to_le_bytes()].concat()[..]);
        assert_eq!(&b[68..76], &[1.0f32.to_le_bytes(), 1.0f32.to_le_bytes()].concat()[..]);
        assert_eq!(&b[76..84], &2u64.to_le_bytes());
        // Levels 0, 7, 7, 0 at 3 bits, MSB first: 000 111 11|1 000 0000.
        assert_eq!(&b[84..86], &[0b0001_1111, 0b1000_0000]);
        assert_eq!(&b[86..], Sha256::digest(&b[..86]).as_slice());
    }

    #[test]
    fn bit_packing_is_msb_first_without_gaps() {
        let mut w = BitWriter::with_capacity(0);
        for (v, bits) in [(1, 1), (0b10, 2), (0xabcd, 16), (0b101, 3), (0x1ff, 9)] {
            w.push(v, bits);
        }
        let bytes = w.finish();
        // 1 10 1010101111001101 101 111111111, padded with zeros.
        assert_eq!(bytes, [0b1101_0101, 0b0111_1001, 0b1011_0111, 0b1111_1110]);
        let mut r = BitReader::new(&bytes);
        for (v, bits) in [(1, 1), (0b10, 2), (0xabcd, 16), (0b101, 3), (0x1ff, 9)] {
            assert_eq!(r.pull(bits), v);
        }
    }

    #[test]
    fn constant_dimension_decodes_to_its_value() {
        let codes = [4.5, -1.0, 4.5, 2.0, 4.5, 3.0];
        let c = CompressedCodes::quantize(&codes, 3, 2, 4, [1, 1, 1], HASH_A).unwrap();
        assert_eq!((c.mins()[0], c.maxs()[0]), (4.5, 4.5));
        let back = CompressedCodes::from_bytes(&c.to_bytes()).unwrap();
        let y = back.dequantize();
        assert_eq!([y[0], y[2], y[4]], [4.5; 3]);
        assert_within_bound(&back, &codes);
    }

    #[test]
    fn single_code_round_trips() {
        let codes = [0.25, -3.0, 1e6];
        let c = CompressedCodes::quantize(&codes, 1, 3, 7, [1, 28, 28], HASH_A).unwrap();
        let back = CompressedCodes::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.dequantize(), codes.to_vec());
    }

    #[test]
    fn bits_per_image_counts_the_whole_file() {
        let c = CompressedCodes::quantize(&sample_codes(10, 6), 10, 6, 4, [1, 8, 8], HASH_A).unwrap();
        assert_eq!(c.payload_bits_per_image(), 24.0);
        let total = c.to_bytes().len() as f64;
        assert_eq!(total, (100 + 48 + 30) as f64);
        assert_eq!(c.bits_per_image(), total * 8.0 / 10.0);
    }

    #[test]
    fn wrong_model_is_refused_naming_both_hashes() {
        let c = CompressedCodes::quantize(&[1.0, 2.0], 2, 1, 8, [1, 1, 1], HASH_A).unwrap();
        c.check_model(&HASH_A).unwrap();
        let err = c.check_model(&HASH_B).unwrap_err();
        assert!(matches!(err, CompressError::ModelMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("another model"), "{msg}");
        assert!(msg.contains("abababab…") && msg.contains("efefefef…"), "{msg}");
        assert!(msg.find("abababab") < msg.find("efefefef"), "{msg}");
    }

    #[test]
    fn zero_bits_rejected() {
        let err = CompressedCodes::quantize(&[1.0], 1, 1, 0, [1, 1, 1], HASH_A).unwrap_err();
        assert!(matches!(err, CompressError::BitsOutOfRange(0)), "{err:?}");
        assert!(err.to_string().contains("got 0"), "{err}");
    }

    #[test]
    fn seventeen_bits_rejected() {
        let err = CompressedCodes::quantize(&[1.0], 1, 1, 17, [1, 1, 1], HASH_A).unwrap_err();
        assert!(matches!(err, CompressError::BitsOutOfRange(17)), "{err:?}");
        assert!(err.to_string().contains("got 17"), "{err}");
    }

    #[test]
    fn non_finite_codes_rejected() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let err = CompressedCodes::quantize(&[0.0, 1.0, 2.0, bad], 2, 2, 8, [1, 1, 1], HASH_A).unwrap_err();
            assert!(
                matches!(err, CompressError::NonFiniteCode { row: 1, dim: 1, .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn zero_counts_rejected() {
        let err = CompressedCodes::quantize(&[], 0, 3, 8, [1, 1, 1], HASH_A).unwrap_err();
        assert!(matches!(err, CompressError::Zero { name: "n" }), "{err:?}");
        let err = CompressedCodes::quantize(&[], 3, 0, 8, [1, 1, 1], HASH_A).unwrap_err();
        assert!(matches!(err, CompressError::Zero { name: "d_latent" }), "{err:?}");
    }

    #[test]
    fn counts_over_u32_rejected() {
        let err = CompressedCodes::quantize(&[], 1 << 32, 1, 8, [1, 1, 1], HASH_A).unwrap_err();
        assert!(matches!(err, CompressError::TooLarge { name: "n", .. }), "{err:?}");
    }

    #[test]
    fn wrong_codes_length_rejected() {
        let err = CompressedCodes::quantize(&[1.0; 5], 2, 3, 8, [1, 1, 1], HASH_A).unwrap_err();
        assert!(
            matches!(
                err,
                CompressError::CodesLength {
                    found: 5,
                    expected: 6,
                    ..
                }
            ),
            "{err:?}"
        );
        let err =
            CompressedCodes::quantize(&[1.0; 5], usize::MAX >> 33, usize::MAX >> 33, 8, [1, 1, 1], HASH_A).unwrap_err();
        assert!(matches!(err, CompressError::CodesLength { .. }), "{err:?}");
    }

    #[test]
    fn bad_magic_rejected() {
        for bytes in [&b"PK\x03\x04 and more"[..], b"", b"G", b"GENX"] {
            let err = CompressedCodes::from_bytes(bytes).unwrap_err();
            match bytes {
                b"" | b"G" => assert!(
                    matches!(err, CompressError::Truncated { part: Part::Header, .. }),
                    "{err:?}"
                ),
                _ => {
                    assert!(matches!(err, CompressError::BadMagic { .. }), "{err:?}");
                    assert!(err.to_string().contains("not a gen compressed file"), "{err}");
                }
            }
        }
    }

    #[test]
    fn other_version_rejected() {
        let mut f = sample_file();
        f[4] = 2;
        let err = CompressedCodes::from_bytes(&f).unwrap_err();
        assert!(matches!(err, CompressError::UnsupportedVersion(2)), "{err:?}");
    }

    #[test]
    fn truncation_names_the_part_and_sizes() {
        let f = sample_file();
        let d = 4;
        let payload = f.len() - 100 - 8 * d;
        let cases = [
            (10, Part::Header, 60),
            (60, Part::Ranges, 60 + 8 * d),
            (60 + 8 * d + 3, Part::PayloadLength, 68 + 8 * d),
            (68 + 8 * d + 1, Part::Payload, 68 + 8 * d + payload),
            (f.len() - 1, Part::Checksum, f.len()),
        ];
        for (len, part, needed) in cases {
            let err = CompressedCodes::from_bytes(&f[..len]).unwrap_err();
            match err {
                CompressError::Truncated {
                    part: p,
                    expected,
                    present,
                } => assert_eq!((p, expected, present), (part, needed as u64, len as u64)),
                other => panic!("prefix of {len} bytes: {other:?}"),
            }
            let msg = err_msg(&f[..len]);
            assert!(
                msg.contains(&part.to_string()) && msg.contains(&needed.to_string()),
                "{msg}"
            );
        }
    }

    fn err_msg(bytes: &[u8]) -> String {
        CompressedCodes::from_bytes(bytes).unwrap_err().to_string()
    }

    #[test]
    fn every_strict_prefix_is_truncated() {
        let f = sample_file();
        for len in 0..f.len() {
            let err = CompressedCodes::from_bytes(&f[..len]).unwrap_err();
            assert!(
                matches!(err, CompressError::Truncated { present, .. } if present == len as u64),
                "prefix of {len} bytes: {err:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut f = sample_file();
        let len = f.len() as u64;
        f.extend_from_slice(&[0, 0, 0]);
        let err = CompressedCodes::from_bytes(&f).unwrap_err();
        assert!(
            matches!(err, CompressError::TrailingBytes { expected, present } if expected == len && present == len + 3),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("3 trailing bytes"), "{err}");
    }

    #[test]
    fn every_single_byte_flip_is_rejected() {
        let f = sample_file();
        for pos in 0..f.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut g = f.clone();
                g[pos] ^= mask;
                let err = CompressedCodes::from_bytes(&g).unwrap_err();
                // Flips in the length fields move the parts, so they show as truncation or trailing bytes.
                let length_field = (12..16).contains(&pos) || (60 + 32..60 + 40).contains(&pos);
                let ok = match err {
                    CompressError::BadMagic { .. } => pos < 4,
                    CompressError::UnsupportedVersion(_) => (4..6).contains(&pos),
                    CompressError::Truncated { .. } | CompressError::TrailingBytes { .. } => length_field,
                    CompressError::ChecksumMismatch { .. } => true,
                    _ => false,
                };
                assert!(ok, "flip 0x{mask:02x} at {pos}: {err:?}");
            }
        }
    }

    #[test]
    fn checksum_mismatch_says_corrupt() {
        let mut f = sample_file();
        let mid = f.len() / 2;
        f[mid] ^= 0x10;
        let msg = err_msg(&f);
        assert!(msg.contains("corrupt") && msg.contains("SHA-256"), "{msg}");
    }

    #[test]
    fn huge_n_in_a_tiny_file_is_rejected_without_allocating() {
        // 40 bytes claiming n = 4e9: the header alone needs 60.
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&[1, 0, 8, 0]);
        f.extend_from_slice(&4_000_000_000u32.to_le_bytes());
        f.extend_from_slice(&[0; 28]);
        assert_eq!(f.len(), 40);
        let err = CompressedCodes::from_bytes(&f).unwrap_err();
        assert!(
            matches!(
                err,
                CompressError::Truncated {
                    part: Part::Header,
                    expected: 60,
                    present: 40
                }
            ),
            "{err:?}"
        );

        // A sealed file with n = 4e9 but a tiny payload: the length check fails before any decoding.
        let f = sealed(1, 16, 0, 4_000_000_000, 1, &[0.0, 1.0], 2, &[0, 0]);
        let err = CompressedCodes::from_bytes(&f).unwrap_err();
        assert!(
            matches!(
                err,
                CompressError::PayloadLength {
                    found: 2,
                    expected: 8_000_000_000,
                    ..
                }
            ),
            "{err:?}"
        );

        // d_latent = 2^32 - 1 would need 32 GiB of ranges; payload length 2^64 - 1 would need 16 EiB.
        let f = sealed(1, 8, 0, 1, u32::MAX, &[], 0, &[]);
        let err = CompressedCodes::from_bytes(&f).unwrap_err();
        assert!(
            matches!(err, CompressError::Truncated { part: Part::Ranges, .. }),
            "{err:?}"
        );
        let f = sealed(1, 8, 0, 1, 1, &[0.0, 1.0], u64::MAX, &[]);
        let err = CompressedCodes::from_bytes(&f).unwrap_err();
        assert!(
            matches!(
                err,
                CompressError::Truncated {
                    part: Part::Payload,
                    expected: u64::MAX,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn sealed_files_with_bad_values_rejected() {
        let ok = sealed(1, 8, 0, 2, 1, &[0.0, 1.0], 2, &[0, 255]);
        assert_eq!(CompressedCodes::from_bytes(&ok).unwrap().dequantize(), vec![0.0, 1.0]);

        let err = CompressedCodes::from_bytes(&sealed(1, 8, 1, 2, 1, &[0.0, 1.0], 2, &[0, 0])).unwrap_err();
        assert!(matches!(err, CompressError::UnsupportedFlags(1)), "{err:?}");
        let err = CompressedCodes::from_bytes(&sealed(1, 0, 0, 2, 1, &[0.0, 1.0], 0, &[])).unwrap_err();
        assert!(matches!(err, CompressError::BitsOutOfRange(0)), "{err:?}");
        let err = CompressedCodes::from_bytes(&sealed(1, 17, 0, 2, 1, &[0.0, 1.0], 5, &[0; 5])).unwrap_err();
        assert!(matches!(err, CompressError::BitsOutOfRange(17)), "{err:?}");
        let err = CompressedCodes::from_bytes(&sealed(1, 8, 0, 0, 1, &[0.0, 1.0], 0, &[])).unwrap_err();
        assert!(matches!(err, CompressError::Zero { name: "n" }), "{err:?}");
        let err = CompressedCodes::from_bytes(&sealed(1, 8, 0, 2, 1, &[0.0, 1.0], 3, &[0; 3])).unwrap_err();
        assert!(
            matches!(
                err,
                CompressError::PayloadLength {
                    found: 3,
                    expected: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        for ranges in [[1.0, 0.0], [f32::NAN, 1.0], [0.0, f32::INFINITY]] {
            let err = CompressedCodes::from_bytes(&sealed(1, 8, 0, 2, 1, &ranges, 2, &[0, 0])).unwrap_err();
            assert!(matches!(err, CompressError::InvalidRange { dim: 0, .. }), "{err:?}");
        }
    }

    #[test]
    fn write_and_read_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.genz");
        let codes = sample_codes(4, 3);
        let c = CompressedCodes::quantize(&codes, 4, 3, 6, [1, 8, 8], HASH_A).unwrap();
        c.write(&path).unwrap();
        // Overwriting an existing file works too.
        c.write(&path).unwrap();
        let back = CompressedCodes::read(&path).unwrap();
        assert_eq!(back, c);
        assert_within_bound(&back, &codes);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("codes.genz")],
            "temporary files left behind"
        );
    }

    #[test]
    fn read_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.genz");
        let err = CompressedCodes::read(&missing).unwrap_err();
        assert!(matches!(err, CompressError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

        let corrupt = dir.path().join("corrupt.genz");
        std::fs::write(&corrupt, b"hello").unwrap();
        let err = CompressedCodes::read(&corrupt).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&corrupt.display().to_string()), "{msg}");
        assert!(msg.contains("not a gen compressed file"), "{msg}");
        match err {
            CompressError::File { source, .. } => assert!(matches!(*source, CompressError::BadMagic { .. })),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn write_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no_such_folder").join("codes.genz");
        let c = CompressedCodes::quantize(&[1.0], 1, 1, 8, [1, 1, 1], HASH_A).unwrap();
        let err = c.write(&path).unwrap_err();
        assert!(matches!(err, CompressError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<CompressedCodes>();
        check::<CompressError>();
    }

    /// Codes of 1 to 8 rows and 1 to 6 columns, with values at several scales; some columns constant.
    fn codes_strategy() -> impl Strategy<Value = (usize, usize, Vec<f32>, u8)> {
        (1usize..=8, 1usize..=6, 1u8..=16).prop_flat_map(|(n, d, bits)| {
            let value = prop_oneof![-10.0f32..10.0, -1e6f32..1e6, -1e30f32..1e30, Just(0.0f32)];
            (
                Just(n),
                Just(d),
                prop::collection::vec(value, n * d),
                prop::collection::vec(any::<bool>(), d),
                Just(bits),
            )
                .prop_map(|(n, d, mut codes, constant, bits)| {
                    for (dim, _) in constant.iter().enumerate().filter(|(_, c)| **c) {
                        for row in 0..n {
                            codes[row * d + dim] = codes[dim];
                        }
                    }
                    (n, d, codes, bits)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random codes round-trip through bytes, each value within half a step.
        #[test]
        fn random_codes_round_trip_within_half_a_step((n, d, codes, bits) in codes_strategy()) {
            let c = CompressedCodes::quantize(&codes, n, d, bits, [1, 2, 3], HASH_B).unwrap();
            let back = CompressedCodes::from_bytes(&c.to_bytes()).unwrap();
            prop_assert_eq!(&back, &c);
            assert_within_bound(&back, &codes);
        }

        /// Arbitrary bytes, with or without a valid magic and version, never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), prefix in any::<bool>()) {
            let data = if prefix { [&b"GENZ\x01\x00"[..], &bytes].concat() } else { bytes };
            let _ = CompressedCodes::from_bytes(&data);
        }

        /// A valid file with random bytes overwritten and its checksum recomputed either fails cleanly
        /// or parses to codes that decode without panicking and write back to the same bytes.
        #[test]
        fn resealed_mutations_never_panic(
            edits in prop::collection::vec((0usize..200, any::<u8>()), 1..4),
        ) {
            let f = sample_file();
            let mut body = f[..f.len() - CHECKSUM_LEN].to_vec();
            for (pos, val) in edits {
                let pos = pos % body.len();
                body[pos] = val;
            }
            let sum = Sha256::digest(&body);
            body.extend_from_slice(&sum);
            if let Ok(c) = CompressedCodes::from_bytes(&body) {
                prop_assert_eq!(c.dequantize().len(), c.n() * c.d_latent());
                prop_assert_eq!(c.to_bytes(), body);
            }
        }

        /// Every strict prefix of a random valid file is rejected as truncated.
        #[test]
        fn prefixes_of_random_files_are_truncated((n, d, codes, bits) in codes_strategy(), cut in any::<prop::sample::Index>()) {
            let f = CompressedCodes::quantize(&codes, n, d, bits, [1, 1, 1], HASH_A).unwrap().to_bytes();
            let len = cut.index(f.len());
            let err = CompressedCodes::from_bytes(&f[..len]).unwrap_err();
            prop_assert!(matches!(err, CompressError::Truncated { .. }), "prefix of {}: {:?}", len, err);
        }

        /// Any single changed byte of a random valid file is rejected.
        #[test]
        fn single_byte_changes_are_rejected(
            (n, d, codes, bits) in codes_strategy(),
            at in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let mut f = CompressedCodes::quantize(&codes, n, d, bits, [1, 1, 1], HASH_A).unwrap().to_bytes();
            let pos = at.index(f.len());
            f[pos] ^= mask;
            prop_assert!(CompressedCodes::from_bytes(&f).is_err(), "change at {}", pos);
        }
    }
}
