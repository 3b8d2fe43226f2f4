//! A BSS's security modes, exactly: parsed from its information elements (the `ie=` hex of a
//! `BSS` reply) — the RSN element (AKMs, ciphers, PMF capability bits), the RSN extension
//! element (SAE hash-to-element, SAE-PK), the WPA (v1) element, the OWE transition element and
//! WPS. Pure and total: any byte string gives an answer (truncated elements give what they hold).
//!
//! Also [`LinkSecurity`]: what the current association uses, from a `STATUS` reply.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::validate::Bssid;

/// Management frame protection (802.11w) as the AP advertises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pmf {
    /// Neither MFPC nor MFPR: no management frame protection.
    Disabled,
    /// MFPC: the AP protects management frames with stations that can.
    Optional,
    /// MFPR: only stations that protect management frames may join.
    Required,
}

/// A transition mode: the AP accepts two kinds of station on one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Transition {
    /// WPA2-Personal (PSK) and WPA3-Personal (SAE) on one BSS.
    Wpa2Wpa3,
    /// WPA2-Enterprise (EAP) and WPA3-Enterprise (EAP-SHA256) on one BSS.
    Wpa2Wpa3Enterprise,
    /// An open BSS that names an OWE companion BSS (OWE transition element): legacy stations
    /// join it open, OWE stations go to the companion.
    OweOpen,
    /// The OWE half of an OWE transition pair (its open companion is named in the element).
    Owe,
}

/// The security modes of one BSS, from its information elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, Default)]
pub struct Modes {
    /// AKM suites of the RSN element, in the AP's order: `PSK`, `SAE`, `SAE-EXT-KEY`, `OWE`,
    /// `EAP`, `EAP-SHA256`, `EAP-SUITE-B-192`, `FT/PSK`, `FT/SAE`, `PSK-SHA256`, `DPP`, …
    /// (an unknown suite as `oui:type`, e.g. `00-0f-ac:99`). Empty without an RSN element.
    pub akms: Vec<String>,
    /// Pairwise ciphers of the RSN element (`CCMP`, `GCMP-256`, `TKIP`, …).
    pub pairwise: Vec<String>,
    /// Group cipher of the RSN element.
    pub group: Option<String>,
    /// Group management cipher (`BIP-CMAC-128` when PMF is on and none is named).
    pub group_mgmt: Option<String>,
    /// Management frame protection; `None` without an RSN element.
    pub pmf: Option<Pmf>,
    /// SAE hash-to-element (H2E) supported (RSN extension element).
    pub sae_h2e: bool,
    /// SAE-PK supported (RSN extension element).
    pub sae_pk: bool,
    /// AKM suites of a WPA (v1) element (`PSK`, `EAP`), if there is one.
    pub wpa1_akms: Vec<String>,
    /// A transition mode, if the BSS offers one.
    pub transition: Option<Transition>,
    /// The companion BSS of an OWE transition pair.
    pub owe_companion_bssid: Option<String>,
    /// The companion's SSID (text, lossy) of an OWE transition pair.
    pub owe_companion_ssid: Option<String>,
    /// Wi-Fi Protected Setup advertised.
    pub wps: bool,
}

const RSN: u8 = 48;
const RSNXE: u8 = 244;
const VENDOR: u8 = 221;
const OUI_IEEE: [u8; 3] = [0x00, 0x0f, 0xac];
const OUI_MS: [u8; 3] = [0x00, 0x50, 0xf2];
const OUI_WFA: [u8; 3] = [0x50, 0x6f, 0x9a];

/// Split raw IEs into (id, body) pairs; a truncated last element is dropped.
pub fn elements(ies: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = ies;
    while rest.len() >= 2 {
        let (id, len) = (rest[0], rest[1] as usize);
        if rest.len() < 2 + len {
            break;
        }
        out.push((id, &rest[2..2 + len]));
        rest = &rest[2 + len..];
    }
    out
}

/// Hex text (`ie=` of a `BSS` reply) to bytes; stops at the first non-hex pair.
pub fn hex_prefix(text: &str) -> Vec<u8> {
    let t = text.trim().as_bytes();
    let mut out = Vec::with_capacity(t.len() / 2);
    for pair in t.chunks_exact(2) {
        match std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
        {
            Some(b) => out.push(b),
            None => break,
        }
    }
    out
}

fn cipher(suite: &[u8]) -> String {
    if suite[..3] == OUI_IEEE || suite[..3] == OUI_MS {
        let name = match suite[3] {
            0 => "USE-GROUP",
            1 => "WEP-40",
            2 => "TKIP",
            4 => "CCMP",
            5 => "WEP-104",
            6 => "BIP-CMAC-128",
            7 => "GROUP-NOT-ALLOWED",
            8 => "GCMP",
            9 => "GCMP-256",
            10 => "CCMP-256",
            11 => "BIP-GMAC-128",
            12 => "BIP-GMAC-256",
            13 => "BIP-CMAC-256",
            _ => "",
        };
        if !name.is_empty() {
            return name.into();
        }
    }
    suite_text(suite)
}

fn akm(suite: &[u8]) -> String {
    let name = if suite[..3] == OUI_IEEE {
        match suite[3] {
            1 => "EAP",
            2 => "PSK",
            3 => "FT/EAP",
            4 => "FT/PSK",
            5 => "EAP-SHA256",
            6 => "PSK-SHA256",
            7 => "TDLS",
            8 => "SAE",
            9 => "FT/SAE",
            11 => "EAP-SUITE-B",
            12 => "EAP-SUITE-B-192",
            13 => "FT/EAP-SHA384",
            14 => "FILS-SHA256",
            15 => "FILS-SHA384",
            16 => "FT-FILS-SHA256",
            17 => "FT-FILS-SHA384",
            18 => "OWE",
            19 => "FT/PSK-SHA384",
            20 => "PSK-SHA384",
            21 => "PASN",
            24 => "SAE-EXT-KEY",
            25 => "FT/SAE-EXT-KEY",
            _ => "",
        }
    } else if suite[..3] == OUI_WFA {
        match suite[3] {
            1 => "OSEN",
            2 => "DPP",
            _ => "",
        }
    } else if suite[..3] == OUI_MS {
        match suite[3] {
            1 => "EAP",
            2 => "PSK",
            _ => "",
        }
    } else {
        ""
    };
    if name.is_empty() {
        suite_text(suite)
    } else {
        name.into()
    }
}

fn suite_text(s: &[u8]) -> String {
    format!("{:02x}-{:02x}-{:02x}:{}", s[0], s[1], s[2], s[3])
}

/// A counted list of 4-byte suites at the start of `b`: (suites, rest). `None` if truncated.
fn suites(b: &[u8]) -> Option<(Vec<&[u8]>, &[u8])> {
    let n = u16::from_le_bytes([*b.first()?, *b.get(1)?]) as usize;
    let body = b.get(2..2 + 4 * n)?;
    Some((body.chunks_exact(4).collect(), &b[2 + 4 * n..]))
}

impl Modes {
    /// Parse the raw IEs of one BSS.
    pub fn from_ies(ies: &[u8]) -> Modes {
        let mut m = Modes::default();
        for (id, body) in elements(ies) {
            match id {
                RSN => m.rsn(body),
                RSNXE => {
                    if let Some(&b) = body.first() {
                        m.sae_h2e = b & (1 << 5) != 0;
                        m.sae_pk = b & (1 << 6) != 0;
                    }
                }
                VENDOR if body.len() >= 4 => {
                    let (oui, ty, rest) = (&body[..3], body[3], &body[4..]);
                    if oui == OUI_MS && ty == 1 {
                        m.wpa1(rest);
                    } else if oui == OUI_MS && ty == 4 {
                        m.wps = true;
                    } else if oui == OUI_WFA && ty == 0x1c && rest.len() >= 7 {
                        let bssid: [u8; 6] = rest[..6].try_into().unwrap_or_default();
                        m.owe_companion_bssid = Some(Bssid::from(bssid).to_string());
                        let len = rest[6] as usize;
                        if let Some(ssid) = rest.get(7..7 + len) {
                            m.owe_companion_ssid = Some(String::from_utf8_lossy(ssid).into());
                        }
                    }
                }
                _ => {}
            }
        }
        let has = |a: &str| m.akms.iter().any(|x| x == a);
        m.transition = if m.owe_companion_bssid.is_some() {
            Some(if m.pmf.is_none() {
                Transition::OweOpen
            } else {
                Transition::Owe
            })
        } else if (has("SAE") || has("FT/SAE") || has("SAE-EXT-KEY"))
            && (has("PSK") || has("FT/PSK") || has("PSK-SHA256"))
        {
            Some(Transition::Wpa2Wpa3)
        } else if (has("EAP") || has("FT/EAP")) && has("EAP-SHA256") {
            Some(Transition::Wpa2Wpa3Enterprise)
        } else {
            None
        };
        m
    }

    fn rsn(&mut self, body: &[u8]) {
        // version (2), group (4), pairwise list, AKM list, capabilities (2), PMKIDs, group mgmt.
        self.pmf = Some(Pmf::Disabled);
        let Some(group) = body.get(2..6) else { return };
        self.group = Some(cipher(group));
        let Some((pairwise, rest)) = suites(&body[6..]) else {
            return;
        };
        self.pairwise = pairwise.into_iter().map(cipher).collect();
        let Some((akms, rest)) = suites(rest) else {
            return;
        };
        self.akms = akms.into_iter().map(akm).collect();
        let Some(caps) = rest.get(..2) else { return };
        let caps = u16::from_le_bytes([caps[0], caps[1]]);
        self.pmf = Some(if caps & (1 << 6) != 0 {
            Pmf::Required
        } else if caps & (1 << 7) != 0 {
            Pmf::Optional
        } else {
            Pmf::Disabled
        });
        let pmf_on = self.pmf != Some(Pmf::Disabled);
        let mut rest = &rest[2..];
        if let Some(n) = rest.get(..2) {
            let n = u16::from_le_bytes([n[0], n[1]]) as usize;
            rest = rest.get(2 + 16 * n..).unwrap_or_default();
            if let Some(gm) = rest.get(..4) {
                self.group_mgmt = Some(cipher(gm));
            }
        }
        if pmf_on && self.group_mgmt.is_none() {
            self.group_mgmt = Some("BIP-CMAC-128".into());
        }
    }

    fn wpa1(&mut self, body: &[u8]) {
        // version (2), group (4), pairwise list, AKM list.
        let Some((_, rest)) = body.get(6..).and_then(suites) else {
            return;
        };
        if let Some((akms, _)) = suites(rest) {
            self.wpa1_akms = akms.into_iter().map(akm).collect();
        }
    }
}

/// The security of the current association, from `STATUS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, Default)]
pub struct LinkSecurity {
    /// Key management in use (`WPA2-PSK`, `SAE`, `OWE`, `NONE`, …).
    pub key_mgmt: Option<String>,
    /// Pairwise cipher.
    pub pairwise_cipher: Option<String>,
    /// Group cipher.
    pub group_cipher: Option<String>,
    /// Management frame protection in use: `optional` (the AP's MFPC) or `required` (its
    /// MFPR); `None` when not protected.
    pub pmf: Option<Pmf>,
    /// Group management cipher in use with PMF.
    pub mgmt_group_cipher: Option<String>,
    /// SAE group, when SAE was used.
    pub sae_group: Option<u16>,
    /// SAE used hash-to-element.
    pub sae_h2e: Option<bool>,
    /// SAE used SAE-PK.
    pub sae_pk: Option<bool>,
}

impl LinkSecurity {
    /// From a parsed `STATUS` (its typed fields and the verbatim rest).
    pub fn from_status(
        key_mgmt: Option<&str>,
        pairwise: Option<&str>,
        group: Option<&str>,
        other: &BTreeMap<String, String>,
    ) -> LinkSecurity {
        let get = |k: &str| other.get(k).map(String::as_str);
        LinkSecurity {
            key_mgmt: key_mgmt.map(str::to_owned),
            pairwise_cipher: pairwise.map(str::to_owned),
            group_cipher: group.map(str::to_owned),
            pmf: match get("pmf") {
                Some("1") => Some(Pmf::Optional),
                Some("2") => Some(Pmf::Required),
                _ => None,
            },
            mgmt_group_cipher: get("mgmt_group_cipher").map(str::to_owned),
            sae_group: get("sae_group").and_then(|v| v.parse().ok()),
            sae_h2e: get("sae_h2e").map(|v| v == "1"),
            sae_pk: get("sae_pk").map(|v| v == "1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsn(akms: &[u8], caps: u16, extra: &[u8]) -> Vec<u8> {
        let mut b = vec![1, 0, 0x00, 0x0f, 0xac, 4, 1, 0, 0x00, 0x0f, 0xac, 4];
        b.extend((akms.len() as u16).to_le_bytes());
        for a in akms {
            b.extend([0x00, 0x0f, 0xac, *a]);
        }
        b.extend(caps.to_le_bytes());
        b.extend(extra);
        let mut ie = vec![RSN, b.len() as u8];
        ie.extend(b);
        ie
    }

    #[test]
    fn wpa2_psk_without_pmf() {
        let m = Modes::from_ies(&rsn(&[2], 0x000c, &[]));
        assert_eq!(m.akms, vec!["PSK"]);
        assert_eq!(m.pairwise, vec!["CCMP"]);
        assert_eq!(m.group.as_deref(), Some("CCMP"));
        assert_eq!(m.pmf, Some(Pmf::Disabled));
        assert_eq!(m.group_mgmt, None);
        assert_eq!(m.transition, None);
    }

    #[test]
    fn wpa2_wpa3_transition_with_pmf_required() {
        // MFPR + MFPC, no PMKIDs, group mgmt BIP-CMAC-128 named.
        let m = Modes::from_ies(&rsn(&[2, 8], 0x00c0, &[0, 0, 0x00, 0x0f, 0xac, 6]));
        assert_eq!(m.akms, vec!["PSK", "SAE"]);
        assert_eq!(m.pmf, Some(Pmf::Required));
        assert_eq!(m.group_mgmt.as_deref(), Some("BIP-CMAC-128"));
        assert_eq!(m.transition, Some(Transition::Wpa2Wpa3));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["pmf"], "required");
        assert_eq!(json["transition"], "wpa2-wpa3");
    }

    #[test]
    fn sae_h2e_and_pk_from_rsnxe() {
        let mut ies = rsn(&[8], 0x00c0, &[]);
        ies.extend([RSNXE, 1, 0x20]);
        let m = Modes::from_ies(&ies);
        assert_eq!(m.akms, vec!["SAE"]);
        assert!(m.sae_h2e && !m.sae_pk);
        assert_eq!(m.pmf, Some(Pmf::Required));
        assert_eq!(m.group_mgmt.as_deref(), Some("BIP-CMAC-128"));
        let mut ies = rsn(&[8], 0x0080, &[]);
        ies.extend([RSNXE, 1, 0x60]);
        let m = Modes::from_ies(&ies);
        assert!(m.sae_h2e && m.sae_pk);
        assert_eq!(m.pmf, Some(Pmf::Optional));
    }

    #[test]
    fn owe_transition_pair() {
        let owe_elem = |bssid: [u8; 6], ssid: &[u8]| {
            let mut b = vec![VENDOR, 0, 0x50, 0x6f, 0x9a, 0x1c];
            b.extend(bssid);
            b.push(ssid.len() as u8);
            b.extend(ssid);
            b[1] = (b.len() - 2) as u8;
            b
        };
        // The open BSS: no RSN, names its OWE companion.
        let open = Modes::from_ies(&owe_elem([2, 0, 0, 0, 7, 0], b"lab-owehid"));
        assert_eq!(open.transition, Some(Transition::OweOpen));
        assert_eq!(open.pmf, None);
        assert_eq!(
            open.owe_companion_bssid.as_deref(),
            Some("02:00:00:00:07:00")
        );
        assert_eq!(open.owe_companion_ssid.as_deref(), Some("lab-owehid"));
        // The OWE BSS: RSN with OWE, PMF required, names the open one.
        let mut ies = rsn(&[18], 0x00c0, &[]);
        ies.extend(owe_elem([2, 0, 0, 0, 6, 0], b"lab-owetrans"));
        let owe = Modes::from_ies(&ies);
        assert_eq!(owe.akms, vec!["OWE"]);
        assert_eq!(owe.transition, Some(Transition::Owe));
        assert_eq!(serde_json::to_value(owe).unwrap()["transition"], "owe");
    }

    #[test]
    fn wpa1_wps_unknown_and_truncated() {
        let mut ies = vec![VENDOR, 22, 0x00, 0x50, 0xf2, 1, 1, 0, 0x00, 0x50, 0xf2, 2];
        ies.extend([1, 0, 0x00, 0x50, 0xf2, 2, 1, 0, 0x00, 0x50, 0xf2, 2]);
        ies.extend([VENDOR, 4, 0x00, 0x50, 0xf2, 4]);
        let m = Modes::from_ies(&ies);
        assert_eq!(m.wpa1_akms, vec!["PSK"]);
        assert!(m.wps);
        assert_eq!(m.pmf, None);
        let m = Modes::from_ies(&rsn(&[99], 0, &[]));
        assert_eq!(m.akms, vec!["00-0f-ac:99"]);
        // Truncated anywhere: no panic, what is there is used.
        let full = rsn(&[2, 8], 0x00c0, &[0, 0, 0x00, 0x0f, 0xac, 6]);
        for cut in 0..full.len() {
            let mut t = full[..cut].to_vec();
            if t.len() >= 2 {
                t[1] = (t.len() - 2) as u8;
            }
            let _ = Modes::from_ies(&t);
        }
        assert_eq!(elements(&[48, 10, 1]), vec![]);
        assert_eq!(hex_prefix("30 0a"), vec![0x30]);
        assert_eq!(hex_prefix("300aZZ01"), vec![0x30, 0x0a]);
    }

    #[test]
    fn link_security_from_status() {
        let mut other = BTreeMap::new();
        for (k, v) in [
            ("pmf", "2"),
            ("mgmt_group_cipher", "BIP"),
            ("sae_group", "19"),
            ("sae_h2e", "1"),
            ("sae_pk", "0"),
        ] {
            other.insert(k.to_string(), v.to_string());
        }
        let l = LinkSecurity::from_status(Some("SAE"), Some("CCMP"), Some("CCMP"), &other);
        assert_eq!(l.pmf, Some(Pmf::Required));
        assert_eq!(l.sae_group, Some(19));
        assert_eq!(l.sae_h2e, Some(true));
        assert_eq!(l.sae_pk, Some(false));
        let l = LinkSecurity::from_status(Some("NONE"), None, None, &BTreeMap::new());
        assert_eq!(l.pmf, None);
        assert_eq!(l.sae_h2e, None);
    }
}
