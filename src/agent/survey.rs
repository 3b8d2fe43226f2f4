//! `wifi_survey`: the channel survey the driver keeps for the box's radio — per channel the
//! noise floor and how long the radio was on it, busy, receiving and transmitting (nl80211
//! `GET_SURVEY`, what `iw dev IF survey dump` shows). Drivers fill what they measure: every
//! field but the frequency is optional, and some drivers keep no survey at all.

use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::Serialize;
use wl_nl80211::{Nl80211Attr, Nl80211SurveyInfo};

use crate::wpa::{Band, freq_to_band, freq_to_channel};

/// `NL80211_SURVEY_INFO_IN_USE`: a flag, the channel the radio is on now (wl-nl80211 0.8 leaves
/// it to `Other`).
const SURVEY_INFO_IN_USE: u16 = 3;

/// One channel of the survey.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct ChannelSurvey {
    /// Centre frequency, MHz.
    pub frequency_mhz: u32,
    /// Its channel number.
    pub channel: Option<u32>,
    /// Its band.
    pub band: Option<Band>,
    /// The radio is on this channel now.
    pub in_use: bool,
    /// Noise floor, dBm.
    pub noise_dbm: Option<i8>,
    /// How long the radio was on this channel, ms.
    pub active_ms: Option<u64>,
    /// How long of that the channel was busy (someone transmitting), ms.
    pub busy_ms: Option<u64>,
    /// Busy time on the extension (secondary) channel, ms.
    pub ext_busy_ms: Option<u64>,
    /// Time spent receiving, ms.
    pub rx_ms: Option<u64>,
    /// Time spent transmitting, ms.
    pub tx_ms: Option<u64>,
    /// busy_ms / active_ms in percent, when both are known and active_ms > 0.
    pub busy_percent: Option<f64>,
}

impl ChannelSurvey {
    /// One channel from the `NL80211_ATTR_SURVEY_INFO` of a dump message; `None` without a
    /// frequency (nothing to name the entry by).
    pub fn from_attrs(attrs: &[Nl80211Attr]) -> Option<Self> {
        let info = attrs.iter().find_map(|a| match a {
            Nl80211Attr::SurveyInfo(i) => Some(i),
            _ => None,
        })?;
        let mut c = ChannelSurvey::default();
        let mut freq = None;
        for n in info {
            match n {
                Nl80211SurveyInfo::Frequency(f) => freq = Some(*f),
                Nl80211SurveyInfo::Noise(v) => c.noise_dbm = Some(*v),
                Nl80211SurveyInfo::ActiveTime(v) => c.active_ms = Some(*v),
                Nl80211SurveyInfo::BusyTime(v) => c.busy_ms = Some(*v),
                Nl80211SurveyInfo::ExtensionBusyTime(v) => c.ext_busy_ms = Some(*v),
                Nl80211SurveyInfo::TimeRx(v) => c.rx_ms = Some(*v),
                Nl80211SurveyInfo::TimeTx(v) => c.tx_ms = Some(*v),
                Nl80211SurveyInfo::Other(o) => {
                    use wl_nl80211::packet_core::Nla as _;
                    if o.kind() == SURVEY_INFO_IN_USE {
                        c.in_use = true;
                    }
                }
                _ => {}
            }
        }
        c.frequency_mhz = freq?;
        c.channel = freq_to_channel(c.frequency_mhz);
        c.band = freq_to_band(c.frequency_mhz);
        c.busy_percent = match (c.busy_ms, c.active_ms) {
            (Some(b), Some(a)) if a > 0 => {
                Some((b.min(a) as f64 * 1000.0 / a as f64).round() / 10.0)
            }
            _ => None,
        };
        Some(c)
    }
}

/// The survey of interface `index` (in the agent's netns), channel by channel as the driver
/// dumps it.
pub async fn survey(index: u32) -> anyhow::Result<Vec<ChannelSurvey>> {
    let (conn, handle, _) = wl_nl80211::new_connection()?;
    let task = tokio::spawn(conn);
    let mut out = Vec::new();
    let attrs = wl_nl80211::Nl80211Survey::new(index).build();
    let mut dump = handle.survey().dump(attrs).execute().await;
    let result = async {
        while let Some(msg) = dump.try_next().await? {
            out.extend(ChannelSurvey::from_attrs(&msg.payload.attributes));
        }
        Ok::<_, wl_nl80211::Nl80211Error>(())
    }
    .await;
    task.abort();
    result?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wl_nl80211::packet_core::DefaultNla;

    #[test]
    fn a_channel_from_its_attributes() {
        let attrs = vec![
            Nl80211Attr::IfIndex(3),
            Nl80211Attr::SurveyInfo(vec![
                Nl80211SurveyInfo::Frequency(2437),
                Nl80211SurveyInfo::Other(DefaultNla::new(SURVEY_INFO_IN_USE, vec![])),
                Nl80211SurveyInfo::Noise(-92),
                Nl80211SurveyInfo::ActiveTime(2000),
                Nl80211SurveyInfo::BusyTime(500),
                Nl80211SurveyInfo::TimeRx(120),
                Nl80211SurveyInfo::TimeTx(30),
            ]),
        ];
        let c = ChannelSurvey::from_attrs(&attrs).unwrap();
        assert_eq!(c.frequency_mhz, 2437);
        assert_eq!(c.channel, Some(6));
        assert_eq!(c.band, Some(Band::Ghz2_4));
        assert!(c.in_use);
        assert_eq!(c.noise_dbm, Some(-92));
        assert_eq!(
            (c.active_ms, c.busy_ms, c.rx_ms, c.tx_ms),
            (Some(2000), Some(500), Some(120), Some(30))
        );
        assert_eq!(c.ext_busy_ms, None);
        assert_eq!(c.busy_percent, Some(25.0));
    }

    #[test]
    fn what_a_driver_leaves_out_stays_unknown() {
        // No frequency: no entry. No times: no percentage. Busy above active (a driver's
        // counters are not atomic): capped at 100 %. Active 0: no percentage.
        assert_eq!(ChannelSurvey::from_attrs(&[Nl80211Attr::IfIndex(3)]), None);
        assert_eq!(
            ChannelSurvey::from_attrs(&[Nl80211Attr::SurveyInfo(vec![Nl80211SurveyInfo::Noise(
                -90
            )])]),
            None
        );
        let only = ChannelSurvey::from_attrs(&[Nl80211Attr::SurveyInfo(vec![
            Nl80211SurveyInfo::Frequency(5180),
        ])])
        .unwrap();
        assert_eq!(
            (only.channel, only.band, only.in_use),
            (Some(36), Some(Band::Ghz5), false)
        );
        assert_eq!((only.noise_dbm, only.busy_percent), (None, None));
        let over = ChannelSurvey::from_attrs(&[Nl80211Attr::SurveyInfo(vec![
            Nl80211SurveyInfo::Frequency(2412),
            Nl80211SurveyInfo::ActiveTime(100),
            Nl80211SurveyInfo::BusyTime(150),
        ])])
        .unwrap();
        assert_eq!(over.busy_percent, Some(100.0));
        let zero = ChannelSurvey::from_attrs(&[Nl80211Attr::SurveyInfo(vec![
            Nl80211SurveyInfo::Frequency(2412),
            Nl80211SurveyInfo::ActiveTime(0),
            Nl80211SurveyInfo::BusyTime(0),
        ])])
        .unwrap();
        assert_eq!(zero.busy_percent, None);
    }
}
