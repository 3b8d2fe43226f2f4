//! `wifi_link`: how well the current link works — from nl80211 station info (`GET_STATION` on
//! the box's WiFi interface, what `iw dev IF station dump` shows) and wpa_supplicant's
//! `SIGNAL_POLL`/`STATUS` (channel width, noise, the security in use); optionally sampled over
//! some seconds with min/avg/max.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::Serialize;
use wl_nl80211::{Nl80211Attr, Nl80211HeGi, Nl80211RateInfo, Nl80211StationInfo};

use super::Agent;
use super::failure::{Code, Failure};
use crate::validate::Bssid;
use crate::wpa::WpaState;
use crate::wpa::modes::LinkSecurity;

/// One direction's bit rate, as nl80211 reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Rate {
    /// Bit rate in Mbit/s.
    pub bitrate_mbps: Option<f64>,
    /// PHY of the rate: `legacy`, `HT`, `VHT`, `HE`, `EHT`.
    pub phy: Option<String>,
    /// MCS index (HT, VHT, HE or EHT).
    pub mcs: Option<u8>,
    /// Spatial streams (VHT/HE/EHT; HT's are in its MCS index).
    pub nss: Option<u8>,
    /// Channel width of the rate in MHz (20 when no wider width is flagged).
    pub width_mhz: Option<u32>,
    /// Guard interval: `0.4us` (short), `0.8us`, `1.6us`, `3.2us`.
    pub guard_interval: Option<String>,
}

impl Rate {
    fn from_nla(nlas: &[Nl80211RateInfo]) -> Rate {
        let mut r = Rate {
            width_mhz: Some(20),
            guard_interval: Some("0.8us".into()),
            ..Rate::default()
        };
        let mut legacy_bitrate16 = None;
        for n in nlas {
            match n {
                Nl80211RateInfo::Bitrate32(b) => r.bitrate_mbps = Some(*b as f64 / 10.0),
                Nl80211RateInfo::Bitrate(b) => legacy_bitrate16 = Some(*b as f64 / 10.0),
                Nl80211RateInfo::Mcs(m) => {
                    r.mcs = Some(*m);
                    r.phy = Some("HT".into());
                }
                Nl80211RateInfo::VhtMcs(m) => {
                    r.mcs = Some(*m);
                    r.phy = Some("VHT".into());
                }
                Nl80211RateInfo::HeMcs(m) => {
                    r.mcs = Some(*m);
                    r.phy = Some("HE".into());
                }
                Nl80211RateInfo::EhtMcs(m) => {
                    r.mcs = Some(*m);
                    r.phy = Some("EHT".into());
                }
                Nl80211RateInfo::VhtNss(n)
                | Nl80211RateInfo::HeNss(n)
                | Nl80211RateInfo::EhtNss(n) => r.nss = Some(*n),
                Nl80211RateInfo::MhzWidth(w) => r.width_mhz = Some(*w),
                Nl80211RateInfo::MhzWidth80Plus80 => r.width_mhz = Some(160),
                Nl80211RateInfo::ShortGi => r.guard_interval = Some("0.4us".into()),
                Nl80211RateInfo::HeGi(g) => {
                    r.guard_interval = Some(
                        match g {
                            Nl80211HeGi::Usec0_8 => "0.8us",
                            Nl80211HeGi::Usec1_6 => "1.6us",
                            Nl80211HeGi::Usec3_2 => "3.2us",
                            Nl80211HeGi::Other(_) => "unknown",
                        }
                        .into(),
                    )
                }
                _ => {}
            }
        }
        if r.bitrate_mbps.is_none() {
            r.bitrate_mbps = legacy_bitrate16;
        }
        if r.phy.is_none() && r.bitrate_mbps.is_some() {
            r.phy = Some("legacy".into());
        }
        if r.bitrate_mbps.is_none() && r.phy.is_none() {
            return Rate::default();
        }
        r
    }
}

/// The station entry of the AP we are associated with (nl80211 `GET_STATION`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct StationInfo {
    /// The AP's address (the station entry's MAC).
    pub bssid: Option<String>,
    /// Signal of the last received frame, dBm.
    pub signal_dbm: Option<i8>,
    /// Average signal, dBm.
    pub signal_avg_dbm: Option<i8>,
    /// Average beacon signal, dBm.
    pub beacon_signal_avg_dbm: Option<i8>,
    /// Transmit rate.
    pub tx_bitrate: Rate,
    /// Receive rate (last unicast data frame).
    pub rx_bitrate: Rate,
    /// Transmitted packets.
    pub tx_packets: Option<u32>,
    /// Received packets.
    pub rx_packets: Option<u32>,
    /// Transmitted bytes.
    pub tx_bytes: Option<u64>,
    /// Received bytes.
    pub rx_bytes: Option<u64>,
    /// Transmit retries.
    pub tx_retries: Option<u32>,
    /// Transmit failures (frames never acknowledged).
    pub tx_failed: Option<u32>,
    /// Received frames dropped for unspecified reasons.
    pub rx_drop_misc: Option<u64>,
    /// Times beacon loss was detected.
    pub beacon_loss: Option<u32>,
    /// Beacons received.
    pub beacon_rx: Option<u64>,
    /// Seconds since association.
    pub connected_time_s: Option<u32>,
    /// Milliseconds since the last activity.
    pub inactive_ms: Option<u32>,
    /// The driver's expected throughput, kbit/s.
    pub expected_throughput_kbps: Option<u32>,
}

impl StationInfo {
    /// From the attributes of one `GET_STATION` reply.
    pub fn from_attrs(attrs: &[Nl80211Attr]) -> StationInfo {
        let mut s = StationInfo::default();
        for a in attrs {
            match a {
                Nl80211Attr::Mac(m) => s.bssid = Some(Bssid::from(*m).to_string()),
                Nl80211Attr::StationInfo(info) => {
                    for i in info {
                        s.apply(i);
                    }
                }
                _ => {}
            }
        }
        s
    }

    fn apply(&mut self, i: &Nl80211StationInfo) {
        match i {
            Nl80211StationInfo::Signal(v) => self.signal_dbm = Some(*v),
            Nl80211StationInfo::SignalAvg(v) => self.signal_avg_dbm = Some(*v),
            Nl80211StationInfo::BeaconSignalAvg(v) => self.beacon_signal_avg_dbm = Some(*v),
            Nl80211StationInfo::TxBitrate(r) => self.tx_bitrate = Rate::from_nla(r),
            Nl80211StationInfo::RxBitrate(r) => self.rx_bitrate = Rate::from_nla(r),
            Nl80211StationInfo::TxPackets(v) => self.tx_packets = Some(*v),
            Nl80211StationInfo::RxPackets(v) => self.rx_packets = Some(*v),
            Nl80211StationInfo::TxBytes64(v) => self.tx_bytes = Some(*v),
            Nl80211StationInfo::RxBytes64(v) => self.rx_bytes = Some(*v),
            Nl80211StationInfo::TxBytes(v) if self.tx_bytes.is_none() => {
                self.tx_bytes = Some(*v as u64)
            }
            Nl80211StationInfo::RxBytes(v) if self.rx_bytes.is_none() => {
                self.rx_bytes = Some(*v as u64)
            }
            Nl80211StationInfo::TxRetries(v) => self.tx_retries = Some(*v),
            Nl80211StationInfo::TxFailed(v) => self.tx_failed = Some(*v),
            Nl80211StationInfo::RxDropMisc(v) => self.rx_drop_misc = Some(*v),
            Nl80211StationInfo::BeaconLoss(v) => self.beacon_loss = Some(*v),
            Nl80211StationInfo::BeaconRx(v) => self.beacon_rx = Some(*v),
            Nl80211StationInfo::ConnectedTime(v) => self.connected_time_s = Some(*v),
            Nl80211StationInfo::InactiveTime(v) => self.inactive_ms = Some(*v),
            Nl80211StationInfo::ExpectedThroughput(v) => self.expected_throughput_kbps = Some(*v),
            _ => {}
        }
    }
}

/// The station entries of interface `index` (in the agent's netns), as nl80211 dumps them.
pub async fn stations(index: u32) -> anyhow::Result<Vec<StationInfo>> {
    let (conn, handle, _) = wl_nl80211::new_connection()?;
    let task = tokio::spawn(conn);
    let mut out = Vec::new();
    let mut dump = handle.station().dump(index).execute().await;
    let result = async {
        while let Some(msg) = dump.try_next().await? {
            out.push(StationInfo::from_attrs(&msg.payload.attributes));
        }
        Ok::<_, wl_nl80211::Nl80211Error>(())
    }
    .await;
    task.abort();
    result?;
    Ok(out)
}

/// min / avg / max of a sampled value.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Stat {
    /// Smallest sample.
    pub min: f64,
    /// Mean of the samples.
    pub avg: f64,
    /// Largest sample.
    pub max: f64,
}

impl Stat {
    /// Of `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = values.iter().sum::<f64>() / values.len() as f64;
        Some(Stat {
            min,
            avg: (avg * 100.0).round() / 100.0,
            max,
        })
    }
}

/// Sampling over a period.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Sampling {
    /// Samples taken.
    pub samples: u32,
    /// Time between samples, ms.
    pub interval_ms: u64,
    /// Time from the first to the last sample, ms.
    pub over_ms: u64,
    /// Signal of the last frame, dBm.
    pub signal_dbm: Option<Stat>,
    /// Transmit bit rate, Mbit/s.
    pub tx_bitrate_mbps: Option<Stat>,
    /// Receive bit rate, Mbit/s.
    pub rx_bitrate_mbps: Option<Stat>,
    /// Transmit retries during the period.
    pub tx_retries_delta: Option<u32>,
    /// Transmit failures during the period.
    pub tx_failed_delta: Option<u32>,
    /// Beacon losses during the period.
    pub beacon_loss_delta: Option<u32>,
}

/// `wifi_link` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LinkReport {
    /// The WiFi interface.
    pub interface: String,
    /// SSID of the network.
    pub ssid: Option<String>,
    /// The AP (BSS) we are associated with.
    pub bssid: Option<String>,
    /// Operating frequency, MHz.
    pub freq_mhz: Option<u32>,
    /// Channel number.
    pub channel: Option<u32>,
    /// Band.
    pub band: Option<crate::wpa::Band>,
    /// Operating channel width (wpa_supplicant's `SIGNAL_POLL`: `20 MHz`, `40 MHz`, …).
    pub channel_width: Option<String>,
    /// Centre frequency of the channel, MHz.
    pub center_freq_mhz: Option<u32>,
    /// Noise floor, dBm, where the driver reports it.
    pub noise_dbm: Option<i32>,
    /// The security in use (key management, ciphers, PMF, SAE details).
    pub security: LinkSecurity,
    /// nl80211 station info of the AP (the last sample when sampling).
    pub station: StationInfo,
    /// Sampling statistics, when `sample_secs` was given.
    pub sampling: Option<Sampling>,
    /// When the (last) station sample was read, in ms since the Unix epoch: for comparing
    /// with another tool's reading of the same moment.
    pub sampled_at_unix_ms: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Agent {
    /// The AP's station entry; a clear `not_connected` when there is none.
    async fn station_now(&self, bssid: Option<&str>) -> Result<StationInfo, Failure> {
        let index = self
            .net
            .index(&self.iface)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the WiFi interface is gone")?;
        let all = stations(index)
            .await
            .map_err(|e| format!("nl80211 station info: {e:#}"))?;
        all.iter()
            .find(|s| bssid.is_some() && s.bssid.as_deref() == bssid)
            .or(all.first())
            .cloned()
            .ok_or_else(|| Failure::new(Code::NotConnected, "no station entry: not associated"))
    }

    /// The link's metrics now, or sampled every `interval` for `period`.
    pub async fn link(
        &self,
        period: Option<Duration>,
        interval: Duration,
    ) -> Result<LinkReport, Failure> {
        let client = self.client().await?;
        let st = client.status().await.map_err(|e| e.to_string())?;
        if st.wpa_state != WpaState::Completed {
            return Err(Failure::new(
                Code::NotConnected,
                format!(
                    "not connected (wpa_state {}): connect first with wifi_connect",
                    serde_json::to_value(st.wpa_state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            ));
        }
        let bssid = st.bssid.map(|b| b.to_string());
        let poll = client.signal_poll().await.ok().flatten();
        let mut samples = vec![(self.station_now(bssid.as_deref()).await?, unix_ms())];
        let started = Instant::now();
        if let Some(period) = period {
            let end = started + period;
            while Instant::now() + interval <= end {
                tokio::time::sleep(interval).await;
                samples.push((self.station_now(bssid.as_deref()).await?, unix_ms()));
            }
        }
        let sampling = period.map(|_| {
            let col = |f: &dyn Fn(&StationInfo) -> Option<f64>| -> Vec<f64> {
                samples.iter().filter_map(|(s, _)| f(s)).collect()
            };
            let delta = |f: &dyn Fn(&StationInfo) -> Option<u32>| -> Option<u32> {
                let first = f(&samples.first()?.0)?;
                let last = f(&samples.last()?.0)?;
                Some(last.saturating_sub(first))
            };
            Sampling {
                samples: samples.len() as u32,
                interval_ms: interval.as_millis() as u64,
                over_ms: started.elapsed().as_millis() as u64,
                signal_dbm: Stat::of(&col(&|s| s.signal_dbm.map(f64::from))),
                tx_bitrate_mbps: Stat::of(&col(&|s| s.tx_bitrate.bitrate_mbps)),
                rx_bitrate_mbps: Stat::of(&col(&|s| s.rx_bitrate.bitrate_mbps)),
                tx_retries_delta: delta(&|s| s.tx_retries),
                tx_failed_delta: delta(&|s| s.tx_failed),
                beacon_loss_delta: delta(&|s| s.beacon_loss),
            }
        });
        let (station, sampled_at_unix_ms) = samples.pop().expect("at least one sample");
        Ok(LinkReport {
            interface: self.iface.clone(),
            ssid: st.ssid.clone(),
            bssid,
            freq_mhz: st.freq_mhz,
            channel: st.channel,
            band: st.freq_mhz.and_then(crate::wpa::freq_to_band),
            channel_width: poll.as_ref().and_then(|p| p.width.clone()),
            center_freq_mhz: poll.as_ref().and_then(|p| p.center_frq1_mhz),
            noise_dbm: poll.as_ref().and_then(|p| p.noise_dbm),
            security: LinkSecurity::from_status(
                st.key_mgmt.as_deref(),
                st.pairwise_cipher.as_deref(),
                st.group_cipher.as_deref(),
                &st.other,
            ),
            station,
            sampling,
            sampled_at_unix_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_info_from_nl80211_attributes() {
        let attrs = vec![
            Nl80211Attr::IfIndex(3),
            Nl80211Attr::Mac([2, 0, 0, 0, 1, 0]),
            Nl80211Attr::StationInfo(vec![
                Nl80211StationInfo::Signal(-30),
                Nl80211StationInfo::SignalAvg(-31),
                Nl80211StationInfo::BeaconSignalAvg(-29),
                Nl80211StationInfo::TxBitrate(vec![
                    Nl80211RateInfo::Bitrate(650),
                    Nl80211RateInfo::Bitrate32(650),
                    Nl80211RateInfo::Mcs(7),
                    Nl80211RateInfo::ShortGi,
                ]),
                Nl80211StationInfo::RxBitrate(vec![Nl80211RateInfo::Bitrate(10)]),
                Nl80211StationInfo::TxPackets(12),
                Nl80211StationInfo::RxBytes(100),
                Nl80211StationInfo::RxBytes64(5_000_000_000),
                Nl80211StationInfo::TxRetries(3),
                Nl80211StationInfo::TxFailed(1),
                Nl80211StationInfo::BeaconLoss(0),
                Nl80211StationInfo::BeaconRx(42),
                Nl80211StationInfo::ConnectedTime(9),
                Nl80211StationInfo::InactiveTime(120),
            ]),
        ];
        let s = StationInfo::from_attrs(&attrs);
        assert_eq!(s.bssid.as_deref(), Some("02:00:00:00:01:00"));
        assert_eq!(s.signal_dbm, Some(-30));
        assert_eq!(s.signal_avg_dbm, Some(-31));
        assert_eq!(s.beacon_signal_avg_dbm, Some(-29));
        assert_eq!(s.tx_bitrate.bitrate_mbps, Some(65.0));
        assert_eq!(s.tx_bitrate.phy.as_deref(), Some("HT"));
        assert_eq!(s.tx_bitrate.mcs, Some(7));
        assert_eq!(s.tx_bitrate.guard_interval.as_deref(), Some("0.4us"));
        assert_eq!(s.tx_bitrate.width_mhz, Some(20));
        assert_eq!(s.rx_bitrate.bitrate_mbps, Some(1.0));
        assert_eq!(s.rx_bitrate.phy.as_deref(), Some("legacy"));
        assert_eq!(s.rx_bytes, Some(5_000_000_000));
        assert_eq!(s.tx_retries, Some(3));
        assert_eq!(s.tx_failed, Some(1));
        assert_eq!(s.beacon_loss, Some(0));
        assert_eq!(s.connected_time_s, Some(9));
        assert_eq!(s.inactive_ms, Some(120));
        let he = Rate::from_nla(&[
            Nl80211RateInfo::Bitrate32(12010),
            Nl80211RateInfo::HeMcs(11),
            Nl80211RateInfo::HeNss(2),
            Nl80211RateInfo::MhzWidth(80),
            Nl80211RateInfo::HeGi(Nl80211HeGi::Usec1_6),
        ]);
        assert_eq!(he.phy.as_deref(), Some("HE"));
        assert_eq!(he.nss, Some(2));
        assert_eq!(he.width_mhz, Some(80));
        assert_eq!(he.guard_interval.as_deref(), Some("1.6us"));
        assert_eq!(Rate::from_nla(&[]), Rate::default());
    }

    #[test]
    fn stats() {
        assert_eq!(Stat::of(&[]), None);
        let s = Stat::of(&[-30.0, -32.0, -31.0]).unwrap();
        assert_eq!((s.min, s.avg, s.max), (-32.0, -31.0, -30.0));
    }
}
