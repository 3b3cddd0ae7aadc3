use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use gen_core::nn::ImageShape;
use sha2::{Digest, Sha256};

use crate::idx::{IdxData, hex, read_idx};
use crate::{DataError, Dataset, Result};

/// One file of a published data set: its name and the SHA-256 of its uncompressed content
/// (uncompressed, because mirrors compress differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    /// The file name without `.gz`.
    pub name: &'static str,
    /// SHA-256 of the uncompressed IDX file, hex.
    pub sha256: &'static str,
}

/// The training or the test part of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

/// An IDX image data set with the MNIST layout: four files, 28x28 grey images, labels 0..9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Name used on the command line and as the sub-folder of the data folder.
    pub name: &'static str,
    /// Training images.
    pub train_images: RemoteFile,
    /// Training labels.
    pub train_labels: RemoteFile,
    /// Test images.
    pub test_images: RemoteFile,
    /// Test labels.
    pub test_labels: RemoteFile,
    /// Where [`DatasetSpec::download`] fetches `<file>.gz` from unless told otherwise.
    pub default_base_url: &'static str,
}

/// MNIST (Y. LeCun, C. Cortes; CC BY-SA 3.0).
pub const MNIST: DatasetSpec = DatasetSpec {
    name: "mnist",
    train_images: RemoteFile {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    train_labels: RemoteFile {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    test_images: RemoteFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    test_labels: RemoteFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    default_base_url: "https://storage.googleapis.com/cvdf-datasets/mnist",
};

/// Fashion-MNIST (Zalando Research; MIT).
pub const FASHION_MNIST: DatasetSpec = DatasetSpec {
    name: "fashion-mnist",
    train_images: RemoteFile {
        name: "train-images-idx3-ubyte",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    train_labels: RemoteFile {
        name: "train-labels-idx1-ubyte",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    test_images: RemoteFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    test_labels: RemoteFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    default_base_url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
};

/// The folder named by the `GEN_DATA_DIR` environment variable, if set.
pub fn data_dir_from_env() -> Option<PathBuf> {
    std::env::var_os("GEN_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The largest download accepted, in bytes.
const MAX_DOWNLOAD: u64 = 256 << 20;

impl DatasetSpec {
    /// The four files.
    pub fn files(&self) -> [RemoteFile; 4] {
        [self.train_images, self.train_labels, self.test_images, self.test_labels]
    }

    fn candidates(&self, data_dir: &Path, file: &RemoteFile) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for dir in [data_dir.join(self.name), data_dir.to_path_buf()] {
            v.push(dir.join(file.name));
            v.push(dir.join(format!("{}.gz", file.name)));
        }
        v
    }

    /// Finds `file` in `data_dir/<name>/` or `data_dir/`, raw or gzip'd.
    ///
    /// # Errors
    /// [`DataError::NotFound`] listing the places searched.
    pub fn locate(&self, data_dir: &Path, file: &RemoteFile) -> Result<PathBuf> {
        let cands = self.candidates(data_dir, file);
        cands
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| DataError::NotFound {
                file: file.name.into(),
                dataset: self.name.into(),
                searched: cands
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Loads one split, verifying both files' checksums. Pixels are scaled to [0, 1].
    ///
    /// # Errors
    /// If a file is missing, corrupt or fails its checksum, or images and labels disagree.
    pub fn load(&self, split: Split, data_dir: &Path) -> Result<Dataset> {
        let (img_file, lbl_file) = match split {
            Split::Train => (self.train_images, self.train_labels),
            Split::Test => (self.test_images, self.test_labels),
        };
        let img_path = self.locate(data_dir, &img_file)?;
        let lbl_path = self.locate(data_dir, &lbl_file)?;
        let images = read_checked(&img_path, &img_file)?;
        let labels = read_checked(&lbl_path, &lbl_file)?;
        let (IdxData::U8(pixels), IdxData::U8(label_bytes)) = (images.data, labels.data) else {
            return Err(DataError::format(&img_path, "expected unsigned-byte images and labels"));
        };
        if images.dims.len() != 3 || labels.dims.len() != 1 {
            return Err(DataError::format(
                &img_path,
                format!(
                    "expected images [n, h, w] and labels [n], got {:?} and {:?}",
                    images.dims, labels.dims
                ),
            ));
        }
        let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
        if labels.dims[0] != n {
            return Err(DataError::format(
                &lbl_path,
                format!("{} labels for {n} images", labels.dims[0]),
            ));
        }
        if let Some(bad) = label_bytes.iter().find(|&&l| l > 9) {
            return Err(DataError::format(&lbl_path, format!("label {bad} outside 0..=9")));
        }
        let features = pixels.into_iter().map(|p| p as f32 / 255.0).collect();
        let labels = label_bytes.into_iter().map(i64::from).collect();
        let name = format!("{}-{}", self.name, if split == Split::Train { "train" } else { "test" });
        Dataset::new(name, features, h * w, Some(labels), Some(ImageShape::grey(h, w)))
    }

    /// Downloads the missing files from `base_url` (or [`DatasetSpec::default_base_url`]) into
    /// `data_dir/<name>/`, as `<file>.gz`. Each download is checked against the published SHA-256
    /// of its uncompressed content, written to a temporary file and only then renamed, so an
    /// interrupted or corrupted download never leaves a file that looks valid. Files already
    /// present and valid are kept. Returns the paths written.
    ///
    /// # Errors
    /// [`DataError::Download`] on a network error or an HTTP error status,
    /// [`DataError::Checksum`] when the content does not match.
    pub fn download(&self, base_url: Option<&str>, data_dir: &Path) -> Result<Vec<PathBuf>> {
        let base = base_url.unwrap_or(self.default_base_url).trim_end_matches('/');
        let dir = data_dir.join(self.name);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        let mut written = Vec::new();
        for file in self.files() {
            if let Ok(p) = self.locate(data_dir, &file)
                && read_checked(&p, &file).is_ok()
            {
                continue;
            }
            let url = format!("{base}/{}.gz", file.name);
            let bytes = fetch(&url)?;
            let target = dir.join(format!("{}.gz", file.name));
            let mut raw = Vec::new();
            GzDecoder::new(&bytes[..])
                .take(crate::idx::MAX_PAYLOAD)
                .read_to_end(&mut raw)
                .map_err(|e| DataError::Download {
                    url: url.clone(),
                    reason: format!("not a valid gzip file: {e}"),
                })?;
            let actual = hex(&Sha256::digest(&raw));
            if actual != file.sha256 {
                return Err(DataError::Checksum {
                    path: url.into(),
                    expected: file.sha256.into(),
                    actual,
                });
            }
            gen_core::train::write_atomic(&target, &bytes).map_err(|e| DataError::Download {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            written.push(target);
        }
        Ok(written)
    }
}

fn read_checked(path: &Path, file: &RemoteFile) -> Result<crate::idx::IdxArray> {
    let a = read_idx(path)?;
    if a.sha256 != file.sha256 {
        return Err(DataError::Checksum {
            path: path.into(),
            expected: file.sha256.into(),
            actual: a.sha256,
        });
    }
    Ok(a)
}

fn fetch(url: &str) -> Result<Vec<u8>> {
    let err = |reason: String| DataError::Download {
        url: url.into(),
        reason,
    };
    let mut response = ureq::get(url).call().map_err(|e| err(e.to_string()))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .read_to_vec()
        .map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    fn shared_data() -> Option<PathBuf> {
        let p = data_dir_from_env()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
        if p.join("mnist").is_dir() {
            Some(p)
        } else {
            crate::skip_or_fail("MNIST files not found (set GEN_DATA_DIR to the folder holding mnist/)");
            None
        }
    }

    /// A tiny HTTP/1.1 server on 127.0.0.1 that serves files from `root`, or `override_body`
    /// for every request when given. Stops after `max_requests`.
    fn serve(root: PathBuf, override_body: Option<Vec<u8>>, max_requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max_requests) {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() <= 2 {
                        break;
                    }
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_string();
                let body = override_body.clone().or_else(|| std::fs::read(root.join(&path)).ok());
                let response = match body {
                    Some(b) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .into_bytes();
                        r.extend(b);
                        r
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&response);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn download_from_a_local_server_verifies_and_loads() {
        let Some(shared) = shared_data() else { return };
        let dir = tempfile::tempdir().unwrap();
        // The server serves shared/data/mnist/<file>.gz at /<file>.gz.
        let url = serve(shared.join("mnist"), None, 8);
        let written = MNIST.download(Some(&url), dir.path()).unwrap();
        assert_eq!(written.len(), 4);
        let test = MNIST.load(Split::Test, dir.path()).unwrap();
        assert_eq!((test.len(), test.d()), (10_000, 784));
        // A second call finds valid files and downloads nothing.
        assert!(
            MNIST
                .download(Some("http://127.0.0.1:9/unreachable"), dir.path())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn corrupted_download_leaves_no_file() {
        let Some(shared) = shared_data() else { return };
        let dir = tempfile::tempdir().unwrap();
        // Valid gzip of an IDX file, but not the published one: one pixel changed.
        let mut raw = Vec::new();
        GzDecoder::new(std::fs::File::open(shared.join("mnist/t10k-labels-idx1-ubyte.gz")).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        raw[100] ^= 1;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        let url = serve(shared.clone(), Some(enc.finish().unwrap()), 4);
        let err = MNIST.download(Some(&url), dir.path()).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("mnist")).unwrap().collect();
        assert!(left.is_empty(), "nothing may be left behind: {left:?}");
        // Garbage that is not gzip at all, and a 404, are errors too.
        let url = serve(shared.clone(), Some(b"<html>not found</html>".to_vec()), 4);
        assert!(matches!(
            MNIST.download(Some(&url), dir.path()).unwrap_err(),
            DataError::Download { .. }
        ));
        let url = serve(dir.path().to_path_buf(), None, 4);
        let err = MNIST.download(Some(&url), dir.path()).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        assert!(std::fs::read_dir(dir.path().join("mnist")).unwrap().next().is_none());
    }

    #[test]
    fn load_reports_missing_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = MNIST.load(Split::Test, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("t10k-images-idx3-ubyte") && err.contains("GEN_DATA_DIR"),
            "{err}"
        );
        let sub = dir.path().join("mnist");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join("t10k-images-idx3-ubyte"),
            crate::idx::encode_idx_u8(&[1, 2, 2], &[0; 4]),
        )
        .unwrap();
        std::fs::write(
            sub.join("t10k-labels-idx1-ubyte"),
            crate::idx::encode_idx_u8(&[1], &[0]),
        )
        .unwrap();
        let err = MNIST.load(Split::Test, dir.path()).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    }

    #[test]
    fn loads_shared_mnist_and_fashion() {
        let Some(shared) = shared_data() else { return };
        for spec in [MNIST, FASHION_MNIST] {
            let train = spec.load(Split::Train, &shared).unwrap();
            assert_eq!((train.len(), train.d()), (60_000, 784));
            assert_eq!(train.image_shape(), Some(ImageShape::grey(28, 28)));
            assert!(train.features().iter().all(|&v| (0.0..=1.0).contains(&v)));
        }
    }
}
