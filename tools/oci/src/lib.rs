//! OCI image layouts of Envoy Wasm modules, in the form Istio's `WasmPlugin`
//! pulls from an `oci://` URL: the "compat" variant of the Wasm image
//! specification, one `application/vnd.oci.image.layer.v1.tar+gzip` layer
//! holding `plugin.wasm`.
//!
//! Everything is computed in memory and is reproducible: the same module
//! gives the same bytes, so the image manifest digest, which Istio compares
//! with `WasmPlugin.spec.sha256`, can be written into manifests without
//! building or pushing the image first.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Istio's fetcher takes the Wasm binary from the last layer only when it has
/// this media type (or Docker's rootfs.diff.tar.gzip under a Docker manifest).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The name Istio's fetcher looks for in the layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// The compat variant requires this manifest annotation for OCI layers.
pub const VARIANT_ANNOTATION: (&str, &str) = ("module.wasm.image/variant", "compat");
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The name of the image inside each layout (`oci:dist/oci/<module>:<TAG>`).
pub const TAG: &str = env!("CARGO_PKG_VERSION");
/// Go's names (GOARCH, GOOS) for WebAssembly on WASI preview 1, as the
/// image-spec asks for `architecture` and `os`.
pub const ARCHITECTURE: &str = "wasm";
pub const OS: &str = "wasip1";

/// Part of the digest: changing it changes every layer's bytes.
const DEFLATE_LEVEL: u8 = 9;

/// A content-addressed blob of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    /// `sha256:<hex>`
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, data: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: sha256_digest(&data),
            data,
        }
    }

    /// Where the image layout keeps it: `blobs/sha256/<hex>`.
    pub fn path(&self) -> String {
        format!("blobs/{}", self.digest.replacen(':', "/", 1))
    }

    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            media_type: self.media_type,
            digest: &self.digest,
            size: self.data.len(),
            annotations: None,
        }
    }
}

/// An OCI image layout holding one image: its files, not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The `oci-layout` file.
    pub oci_layout: Vec<u8>,
    /// `index.json`: one entry, the manifest, named [`TAG`].
    pub index: Vec<u8>,
    pub manifest: Blob,
    pub config: Blob,
    pub layer: Blob,
}

impl Layout {
    /// `sha256:<hex>` of the image manifest: what a registry reports after a
    /// push and what Istio compares with `WasmPlugin.spec.sha256` (which takes
    /// the hex without the `sha256:` prefix).
    pub fn manifest_digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Every file of the layout: its path relative to the layout's directory
    /// and its bytes.
    pub fn files(&self) -> Vec<(String, &[u8])> {
        let mut files = vec![
            ("oci-layout".to_string(), self.oci_layout.as_slice()),
            ("index.json".to_string(), self.index.as_slice()),
        ];
        for blob in [&self.config, &self.layer, &self.manifest] {
            files.push((blob.path(), blob.data.as_slice()));
        }
        files
    }

    /// Writes the layout into `dir`, replacing whatever was there: a layout
    /// left from an older module would keep its blobs otherwise. The new
    /// layout is written beside `dir` first and renamed into place.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let name = dir
            .file_name()
            .ok_or_else(|| io::Error::other(format!("{}: not a directory name", dir.display())))?;
        let mut staging_name = std::ffi::OsString::from(".");
        staging_name.push(name);
        staging_name.push(".tmp");
        let staging = dir.with_file_name(staging_name);
        remove_dir_if_present(&staging)?;
        for (path, bytes) in self.files() {
            let path = staging.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        remove_dir_if_present(dir)?;
        std::fs::rename(&staging, dir)
    }
}

fn remove_dir_if_present(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The image of one Wasm module, as an OCI image layout in memory.
pub fn image_layout(wasm: &[u8]) -> Layout {
    let tar = ustar(PLUGIN_FILE, wasm);
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(LAYER_MEDIA_TYPE, gzip(&tar));
    let config = Blob::new(
        CONFIG_MEDIA_TYPE,
        to_json(&ImageConfig {
            architecture: ARCHITECTURE,
            os: OS,
            rootfs: RootFs {
                kind: "layers",
                diff_ids: vec![diff_id],
            },
        }),
    );
    let manifest = Blob::new(
        MANIFEST_MEDIA_TYPE,
        to_json(&Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE,
            config: config.descriptor(),
            layers: vec![layer.descriptor()],
            annotations: BTreeMap::from([VARIANT_ANNOTATION]),
        }),
    );
    // No `platform` in the entry: go-containerregistry, which Istio uses,
    // takes an index child without one for linux/amd64, so the image still
    // resolves if a tool pushes the whole index instead of the manifest.
    let index = to_json(&Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests: vec![Descriptor {
            annotations: Some(BTreeMap::from([(REF_NAME_ANNOTATION, TAG)])),
            ..manifest.descriptor()
        }],
    });
    Layout {
        oci_layout: to_json(&OciLayout {
            image_layout_version: "1.0.0",
        }),
        index,
        manifest,
        config,
        layer,
    }
}

/// `sha256:<hex>` of the image manifest of this module's image (see
/// [`Layout::manifest_digest`]), without writing anything.
pub fn manifest_digest(wasm: &[u8]) -> String {
    image_layout(wasm).manifest.digest
}

/// Writes the layout of every `*.wasm` in `dist` to `out/<module>/` and
/// returns each module's name, layout directory and manifest digest, by name.
pub fn write_layouts(dist: &Path, out: &Path) -> io::Result<Vec<(String, PathBuf, String)>> {
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(dist)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                modules.push((stem.to_string(), path.clone()));
            }
        }
    }
    modules.sort();
    std::fs::create_dir_all(out)?;
    let mut written = Vec::new();
    for (module, path) in modules {
        let layout = image_layout(&std::fs::read(&path)?);
        let dir = out.join(&module);
        layout.write(&dir)?;
        written.push((module, dir, layout.manifest.digest));
    }
    Ok(written)
}

fn sha256_digest(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

// serde_json fails only on a map key that is not a string or on a
// `Serialize` impl that returns an error: these are derived structs of
// strings, integers and maps keyed by `&str`, so it cannot fail, and a
// `Result` here would only be unwrapped by every caller.
#[allow(clippy::expect_used)]
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("structs of strings and integers always serialize")
}

// Structs rather than serde_json::Value: their field order is fixed, whereas
// a Value's object order depends on serde_json's `preserve_order` feature,
// which any crate in a build can switch on, and the bytes are the digest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciLayout {
    image_layout_version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
    annotations: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
struct ImageConfig {
    architecture: &'static str,
    os: &'static str,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

const BLOCK: usize = 512;

/// A POSIX ustar archive of one regular file, with nothing taken from the
/// build machine: mtime 0, uid/gid 0 with no user or group names, mode 0644.
fn ustar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; BLOCK];
    // Each field's offset and width are the format's; the name is
    // PLUGIN_FILE, well within its 100 bytes.
    let mut field = |offset: usize, value: &[u8]| put(&mut header, offset, value);
    field(0, name.as_bytes());
    field(100, b"0000644\0");
    field(108, b"0000000\0");
    field(116, b"0000000\0");
    // 11 octal digits hold 8 GiB, far above any wasm32 module.
    field(124, format!("{:011o}\0", data.len()).as_bytes());
    field(136, b"00000000000\0");
    // The checksum is taken with its own field as spaces.
    field(148, b"        ");
    field(156, b"0");
    field(257, b"ustar\0");
    field(263, b"00");
    field(329, b"0000000\0");
    field(337, b"0000000\0");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());

    let padded = data.len().div_ceil(BLOCK) * BLOCK;
    let mut tar = Vec::with_capacity(BLOCK + padded + 2 * BLOCK);
    tar.extend_from_slice(&header);
    tar.extend_from_slice(data);
    // The data padded to a block, then two zero blocks that end the archive.
    tar.resize(BLOCK + padded + 2 * BLOCK, 0);
    tar
}

/// Writes `value` into `header` at `offset` (what would run past the
/// block is dropped).
fn put(header: &mut [u8; BLOCK], offset: usize, value: &[u8]) {
    for (slot, byte) in header.iter_mut().skip(offset).zip(value) {
        *slot = *byte;
    }
}

/// A gzip member (RFC 1952) with a fixed header: no name, mtime 0, XFL 2
/// (the best-compression level used), OS 255 "unknown" (not the build host's).
fn gzip(data: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, DEFLATE_LEVEL);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    // ISIZE is the input length modulo 2^32 (RFC 1952, 2.3.1).
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[allow(clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn same_module_same_bytes() {
        let wasm = b"\0asm\x01\0\0\0 not a real module, only bytes".repeat(50);
        assert_eq!(image_layout(&wasm), image_layout(&wasm));
        let other = manifest_digest(&wasm[1..]);
        assert_ne!(manifest_digest(&wasm), other);
    }

    #[test]
    fn ustar_header_fields() {
        let tar = ustar("plugin.wasm", &[7u8; 600]);
        assert_eq!(tar.len(), 512 + 1024 + 1024);
        assert_eq!(&tar[..11], b"plugin.wasm");
        assert_eq!(&tar[124..136], b"00000001130\0");
        assert_eq!(&tar[257..263], b"ustar\0");
        // The checksum field read back as octal equals the byte sum with
        // the field taken as spaces.
        let stored = std::str::from_utf8(&tar[148..154]).expect("octal digits");
        let stored = u32::from_str_radix(stored, 8).expect("octal");
        let sum: u32 = tar[..148]
            .iter()
            .chain(&[b' '; 8])
            .chain(&tar[156..512])
            .map(|&b| u32::from(b))
            .sum();
        assert_eq!(stored, sum);
        assert!(tar[512 + 600..].iter().all(|&b| b == 0));
    }

    #[test]
    fn gzip_header_and_trailer() {
        let data = b"hello hello hello hello";
        let gz = gzip(data);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        let body = &gz[10..gz.len() - 8];
        assert_eq!(
            miniz_oxide::inflate::decompress_to_vec(body).expect("inflate"),
            data
        );
        assert_eq!(gz[gz.len() - 4..], (data.len() as u32).to_le_bytes());
    }

    #[test]
    fn manifest_names_config_and_layer() {
        let layout = image_layout(b"\0asm\x01\0\0\0");
        let manifest: serde_json::Value =
            serde_json::from_slice(&layout.manifest.data).expect("manifest JSON");
        assert_eq!(manifest["config"]["digest"], layout.config.digest.as_str());
        assert_eq!(
            manifest["layers"][0]["digest"],
            layout.layer.digest.as_str()
        );
        assert_eq!(manifest["layers"][0]["size"], layout.layer.data.len());
        let index: serde_json::Value = serde_json::from_slice(&layout.index).expect("index JSON");
        assert_eq!(index["manifests"][0]["digest"], layout.manifest_digest());
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            TAG
        );
    }
}
