//! The OCI image layouts `make oci` writes (`oci_layout::write_layouts`),
//! read back by code that shares nothing with tools/oci: the image spec's
//! Rust types (oci-spec) with the tar and flate2 crates, and syft (PyPI),
//! which reads a layout through go-containerregistry and Go's archive/tar
//! and compress/gzip, the library and readers of Istio's Wasm image fetcher.
//! `make test-extra` adds skopeo (Debian), the tool the README pushes with.

use flate2::read::GzDecoder;
use harness::modules;
use harness::paths::{venv_tool, wasm, workspace_root};
use manifests::sha256_hex;
use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, OciLayout,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target/oci-tests")
        .join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn write_layouts(name: &str) -> PathBuf {
    let out = scratch(name);
    let written = oci_layout::write_layouts(&workspace_root().join("dist"), &out)
        .expect("write the layouts of dist/");
    for module in &modules() {
        assert!(
            written.iter().any(|(m, _, _)| m == module),
            "no layout for {module}: {written:?}"
        );
    }
    out
}

/// The layouts `make oci` wrote to dist/oci/: what users push.
fn layouts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = workspace_root().join("dist/oci");
        for module in &modules() {
            assert!(
                dir.join(module).join("index.json").is_file(),
                "dist/oci/{module}: run `make oci`"
            );
        }
        dir
    })
}

fn module_bytes(module: &str) -> Vec<u8> {
    std::fs::read(wasm(module)).expect("read dist module")
}

/// `sha256:<hex>`, as OCI names a blob.
fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// A blob the descriptor names, checked against the descriptor's digest and size.
fn blob(layout: &Path, descriptor: &Descriptor) -> Vec<u8> {
    let digest = descriptor.digest();
    assert_eq!(digest.algorithm().as_ref(), "sha256", "{digest}");
    let path = layout.join("blobs/sha256").join(digest.digest());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() as u64, descriptor.size(), "size of {digest}");
    assert_eq!(sha256(&bytes), digest.to_string(), "content of {digest}");
    bytes
}

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read layout dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("inside dir");
                files.insert(
                    relative.display().to_string(),
                    std::fs::read(&path).expect("read layout file"),
                );
            }
        }
    }
    files
}

/// What Istio's fetcher does with the last layer (pkg/wasm/imagefetcher.go,
/// extractWasmPluginBinary): gunzip, walk the tar, return the first entry
/// whose base name is plugin.wasm.
fn extract_like_istio(layer: &[u8]) -> Vec<u8> {
    let mut archive = tar::Archive::new(GzDecoder::new(layer));
    for entry in archive.entries().expect("layer is a gzipped tar") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("entry path").into_owned();
        if path.file_name().is_some_and(|n| n == "plugin.wasm") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read plugin.wasm");
            return bytes;
        }
    }
    panic!("plugin.wasm not found in the layer");
}

#[test]
fn layouts_are_images_istio_extracts_the_module_from() {
    for module in &modules() {
        let dir = layouts().join(module);
        let wasm = module_bytes(module);

        let oci_layout = OciLayout::from_file(dir.join("oci-layout")).expect("oci-layout");
        assert_eq!(oci_layout.image_layout_version(), "1.0.0");

        let index = ImageIndex::from_file(dir.join("index.json")).expect("index.json");
        assert_eq!(index.schema_version(), 2);
        assert_eq!(index.media_type(), &Some(MediaType::ImageIndex));
        let [entry] = index.manifests().as_slice() else {
            panic!(
                "{module}: one image per layout, got {:?}",
                index.manifests()
            );
        };
        assert_eq!(entry.media_type(), &MediaType::ImageManifest);
        // The name `skopeo copy oci:<dir>:<tag>` selects the image by.
        let annotations = entry.annotations().clone().unwrap_or_default();
        assert_eq!(
            annotations.get("org.opencontainers.image.ref.name"),
            Some(&oci_layout::TAG.to_string())
        );
        // go-containerregistry takes an index child without a platform for
        // its default one, so the image resolves even if the index is pushed.
        assert_eq!(entry.platform(), &None, "{module}");

        let manifest_bytes = blob(&dir, entry);
        assert_eq!(
            entry.digest().to_string(),
            oci_layout::manifest_digest(&wasm),
            "{module}: index names the digest the library computes"
        );
        let manifest = ImageManifest::from_reader(manifest_bytes.as_slice()).expect("manifest");
        assert_eq!(manifest.schema_version(), 2);
        // Istio switches on this: Docker's manifest type would make it
        // require Docker's layer media type.
        assert_eq!(manifest.media_type(), &Some(MediaType::ImageManifest));
        assert_eq!(
            manifest
                .annotations()
                .as_ref()
                .and_then(|a| a.get("module.wasm.image/variant"))
                .map(String::as_str),
            Some("compat"),
            "{module}: the compat variant's annotation"
        );

        assert_eq!(manifest.config().media_type(), &MediaType::ImageConfig);
        let config = ImageConfiguration::from_reader(blob(&dir, manifest.config()).as_slice())
            .expect("image config");
        assert_eq!(config.architecture(), &Arch::Wasm);
        assert_eq!(config.os().to_string(), "wasip1");
        assert_eq!(config.rootfs().typ(), "layers");

        // Istio 1.12 to 1.15 require exactly one layer; later ones take the last.
        let [layer] = manifest.layers().as_slice() else {
            panic!("{module}: one layer, got {:?}", manifest.layers());
        };
        assert_eq!(layer.media_type().to_string(), TAR_GZIP);
        let layer_bytes = blob(&dir, layer);
        assert!(
            extract_like_istio(&layer_bytes) == wasm,
            "{module}: plugin.wasm in the last layer differs from dist/{module}.wasm"
        );

        let mut gunzip = GzDecoder::new(layer_bytes.as_slice());
        let mut tar_bytes = Vec::new();
        gunzip.read_to_end(&mut tar_bytes).expect("gunzip layer");
        assert_eq!(config.rootfs().diff_ids(), &vec![sha256(&tar_bytes)]);
        // Nothing of the build machine or time in the layer.
        let header = gunzip.header().expect("gzip header");
        assert_eq!((header.mtime(), header.filename()), (0, None));
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries: Vec<_> = archive
            .entries()
            .expect("tar")
            .map(|e| {
                let e = e.expect("tar entry");
                let h = e.header();
                (
                    e.path().expect("path").display().to_string(),
                    h.entry_type(),
                    h.mode().expect("mode"),
                    h.uid().expect("uid"),
                    h.gid().expect("gid"),
                    h.mtime().expect("mtime"),
                    h.size().expect("size"),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![(
                "plugin.wasm".to_string(),
                tar::EntryType::Regular,
                0o644,
                0,
                0,
                0,
                wasm.len() as u64
            )]
        );

        // Nothing in the layout beyond what the index reaches.
        let mut expected: Vec<String> = [entry, manifest.config(), layer]
            .iter()
            .map(|d| format!("blobs/sha256/{}", d.digest().digest()))
            .chain(["index.json".into(), "oci-layout".into()])
            .collect();
        expected.sort();
        assert_eq!(tree(&dir).into_keys().collect::<Vec<_>>(), expected);
    }
}

fn syft(layout: &Path, work: &Path) -> Value {
    let output = Command::new(venv_tool("syft"))
        .args(["scan", "-q", "-o", "syft-json"])
        .arg(format!("oci-dir:{}", layout.display()))
        // No update check (no network), every file with its sha256 (by
        // default only files a package owns), a cache of our own, and no
        // .syft.yaml from the work tree.
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_FILE_METADATA_SELECTION", "all")
        .env("SYFT_FILE_METADATA_DIGESTS", "sha256")
        .env("SYFT_CACHE_DIR", work.join("cache"))
        .current_dir(work)
        .output()
        .expect("run syft");
    assert!(
        output.status.success(),
        "syft on {}: {}",
        layout.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("syft JSON")
}

#[test]
fn go_containerregistry_reads_the_digest_and_the_module() {
    let work = scratch("syft");
    for module in &modules() {
        let wasm = module_bytes(module);
        let report = syft(&layouts().join(module), &work);
        let image = &report["source"]["metadata"];
        assert_eq!(
            image["manifestDigest"],
            oci_layout::manifest_digest(&wasm).as_str(),
            "{module}: the manifest digest go-containerregistry computes"
        );
        assert_eq!(
            image["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let layers = image["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "{module}: {layers:?}");
        assert_eq!(layers[0]["mediaType"], TAR_GZIP);

        let files = report["files"].as_array().expect("files");
        assert_eq!(files.len(), 1, "{module}: {files:?}");
        let file = &files[0];
        assert_eq!(file["location"]["path"], "/plugin.wasm");
        assert_eq!(file["metadata"]["size"], wasm.len());
        assert_eq!(file["metadata"]["type"], "RegularFile");
        let digests = file["digests"].as_array().expect("digests");
        assert_eq!(
            format!(
                "{}:{}",
                digests[0]["algorithm"].as_str().unwrap_or_default(),
                digests[0]["value"].as_str().unwrap_or_default()
            ),
            sha256(&wasm),
            "{module}: plugin.wasm as Go's gzip and tar readers extract it"
        );
    }
    std::fs::remove_dir_all(work).expect("remove scratch dir");
}

#[test]
fn same_module_same_bytes() {
    let first = write_layouts("again-1");
    let second = write_layouts("again-2");
    for module in &modules() {
        let wasm = module_bytes(module);
        let a = tree(&first.join(module));
        assert_eq!(a, tree(&second.join(module)), "{module}: two writes differ");
        assert_eq!(
            a,
            tree(&layouts().join(module)),
            "{module}: dist/oci/ holds another image than dist/ gives (run `make oci`)"
        );
        // The in-memory layout, whose digest the manifests use, is what is written.
        let in_memory: BTreeMap<String, Vec<u8>> = oci_layout::image_layout(&wasm)
            .files()
            .into_iter()
            .map(|(path, bytes)| (path, bytes.to_vec()))
            .collect();
        assert_eq!(a, in_memory, "{module}");
    }
    for dir in [first, second] {
        std::fs::remove_dir_all(dir).expect("remove scratch dir");
    }
}

fn skopeo(args: &[&str], policy: &Path) -> Vec<u8> {
    let output = Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(args)
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// skopeo (containers/image) reads each layout by its tag, reports the
/// manifest digest, and copies the image out verifying every blob's digest;
/// GNU tar then unpacks plugin.wasm from the copied layer.
#[test]
#[ignore = "needs skopeo: make test-extra"]
fn skopeo_reads_and_copies_the_images() {
    let work = scratch("skopeo");
    // A trust policy of our own: the system's may be missing or stricter.
    let policy = work.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
    .expect("write policy");
    for module in &modules() {
        let wasm = module_bytes(module);
        let digest = oci_layout::manifest_digest(&wasm);
        let reference = format!(
            "oci:{}:{}",
            layouts().join(module).display(),
            oci_layout::TAG
        );

        let raw = skopeo(&["inspect", "--raw", &reference], &policy);
        assert_eq!(sha256(&raw), digest, "{module}: raw manifest");
        let inspected: Value =
            serde_json::from_slice(&skopeo(&["inspect", &reference], &policy)).expect("JSON");
        assert_eq!(inspected["Digest"], digest.as_str(), "{module}");
        assert_eq!(inspected["Architecture"], "wasm");
        assert_eq!(inspected["Os"], "wasip1");

        let copy = work.join(module);
        let copy_ref = format!("dir:{}", copy.display());
        skopeo(
            &[
                "copy",
                "--quiet",
                "--preserve-digests",
                &reference,
                &copy_ref,
            ],
            &policy,
        );
        let manifest = std::fs::read(copy.join("manifest.json")).expect("copied manifest");
        assert_eq!(sha256(&manifest), digest, "{module}: copied manifest");
        let manifest: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
        // skopeo checks each blob's digest as it copies, not the size the
        // manifest gives for it.
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        for descriptor in layers.iter().chain([&manifest["config"]]) {
            let hex = descriptor["digest"]
                .as_str()
                .and_then(|d| d.strip_prefix("sha256:"))
                .expect("sha256 digest");
            let copied = std::fs::metadata(copy.join(hex)).expect("copied blob");
            assert_eq!(descriptor["size"], copied.len(), "{module}: size of {hex}");
        }
        let last = manifest["layers"]
            .as_array()
            .and_then(|l| l.last())
            .expect("a layer");
        assert_eq!(last["mediaType"], TAR_GZIP);
        let hex = last["digest"]
            .as_str()
            .and_then(|d| d.strip_prefix("sha256:"))
            .expect("sha256 layer digest");
        let unpacked = work.join(format!("{module}-unpacked"));
        std::fs::create_dir_all(&unpacked).expect("create dir");
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(copy.join(hex))
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("run tar");
        assert!(status.success(), "{module}: tar -xzf on the copied layer");
        assert!(
            std::fs::read(unpacked.join("plugin.wasm")).expect("plugin.wasm") == wasm,
            "{module}: plugin.wasm from skopeo's copy differs from dist/{module}.wasm"
        );
    }
    std::fs::remove_dir_all(work).expect("remove scratch dir");
}
