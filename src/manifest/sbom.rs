//! The SBOM: an SPDX 2.3 JSON document listing every package installed in
//! the image (base and new), so scanners can match it against advisories.
//!
//! In: the image's name and digest, the source date, the packages of its
//! rpm database. Out: `NAME-DIGEST.spdx.json`. Deterministic: the document
//! namespace comes from the image digest, `created` from the source date,
//! packages are sorted by name. Licenses are rpm's free text, which is not
//! always an SPDX expression, so they are declared NOASSERTION and quoted
//! in each package's comment.

use serde_json::{Value, json};

use crate::install::ImagePackage;

fn spdx_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `YYYY-MM-DDThh:mm:ssZ` for a Unix time (the calendar is
/// [`crate::source_date::utc`]'s, which stops at year 9999).
pub fn iso8601(secs: u64) -> String {
    crate::source_date::utc(secs)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A package URL for an rpm (purl spec, type `rpm`).
pub fn purl(p: &ImagePackage) -> String {
    let ns = if p.release.contains("amzn2023") {
        "amazonlinux"
    } else {
        "rpm"
    };
    let mut s = format!(
        "pkg:rpm/{ns}/{}@{}-{}?arch={}",
        p.name, p.version, p.release, p.arch
    );
    if let Some(e) = p.epoch {
        s.push_str(&format!("&epoch={e}"));
    }
    s
}

pub fn document(
    name: &str,
    image_sha256: &str,
    source_date: u64,
    packages: &[ImagePackage],
) -> Value {
    let mut pkgs = vec![json!({
        "name": name,
        "SPDXID": "SPDXRef-Image",
        "versionInfo": image_sha256,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image_sha256}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, p) in packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{}", i + 1, spdx_id(&p.name));
        let evr = match p.epoch {
            Some(e) => format!("{e}:{}-{}", p.version, p.release),
            None => format!("{}-{}", p.version, p.release),
        };
        let mut pkg = json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": evr,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(p),
            }],
            "comment": format!("rpm License: {}; SIGMD5: {}", p.license, p.sigmd5),
        });
        if !p.vendor.is_empty() {
            pkg["supplier"] = json!(format!("Organization: {}", p.vendor));
        }
        if !p.summary.is_empty() {
            pkg["summary"] = json!(p.summary);
        }
        if !p.source_rpm.is_empty() && p.source_rpm != "(none)" {
            pkg["sourceInfo"] = json!(format!("built from {}", p.source_rpm));
        }
        pkgs.push(pkg);
        rels.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name}-{}", &image_sha256[..image_sha256.len().min(16)]),
        "documentNamespace": format!("urn:ingot:image:sha256:{image_sha256}"),
        "creationInfo": {
            "created": iso8601(source_date),
            "creators": [format!("Tool: ingot-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": pkgs,
        "relationships": rels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_793_534_400), "2026-11-01T12:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ids_are_spdx_safe_and_unique() {
        let p = ImagePackage {
            name: "libstdc++".into(),
            epoch: Some(1),
            version: "1".into(),
            release: "2.amzn2023".into(),
            arch: "x86_64".into(),
            nevra: String::new(),
            license: "GPL".into(),
            vendor: "Amazon Linux".into(),
            url: String::new(),
            source_rpm: String::new(),
            sigmd5: "00".into(),
            summary: String::new(),
        };
        let d = document("img", &"a".repeat(64), 0, &[p.clone(), p]);
        let ids: Vec<&str> = d["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "SPDXRef-Image",
                "SPDXRef-Package-1-libstdc--",
                "SPDXRef-Package-2-libstdc--"
            ]
        );
        assert_eq!(
            d["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:rpm/amazonlinux/libstdc++@1-2.amzn2023?arch=x86_64&epoch=1"
        );
    }
}
