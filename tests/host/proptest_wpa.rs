//! Property tests for the wpa encoder, escaping and parsers: no panics on any input, exact
//! round trips, and no way for a user string to add a token, a line or a NUL to a command.

use proptest::prelude::*;

use wifi_isolate::validate::{
    self, Bssid, EapIdentity, EapPassword, Passphrase, SaePassword, Ssid,
};
use wifi_isolate::wpa::escape::{decode_config_string, printf_decode, printf_encode, take_quoted};
use wifi_isolate::wpa::{
    Bss, Command, ConfiguredNetwork, Event, NetworkField, Security, SignalPoll, Status, parse_event,
};

fn ssid_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..=32)
}

/// Text that looks like wpa_supplicant output often enough to reach deep parser branches.
fn replyish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_owned()),
        Just("=".to_owned()),
        Just("\t".to_owned()),
        Just("\\".to_owned()),
        Just("\\x".to_owned()),
        Just("\"".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("bssid=".to_owned()),
        Just("ssid=".to_owned()),
        Just("freq=".to_owned()),
        Just("flags=[WPA2-PSK+SAE-".to_owned()),
        Just("02:00:00:00:01:00".to_owned()),
        Just("network id / ssid / bssid / flags\n".to_owned()),
        Just("<3>CTRL-EVENT-".to_owned()),
        Just("SSID-TEMP-DISABLED id=1 ssid=\"".to_owned()),
        Just("Trying to associate with ".to_owned()),
        Just("(SSID='".to_owned()),
        Just("' freq=".to_owned()),
        Just("IFNAME=".to_owned()),
        "[0-9]{1,12}",
        "\\PC{0,8}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printf_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let encoded = printf_encode(&bytes);
        prop_assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert_eq!(printf_decode(&encoded), bytes);
    }

    #[test]
    fn printf_decode_never_panics(text in replyish()) {
        let _ = printf_decode(&text);
        let _ = decode_config_string(&text);
        let _ = take_quoted(&text);
    }

    #[test]
    fn ssid_command_is_one_line_four_tokens(bytes in ssid_bytes(), id in any::<u32>()) {
        let ssid = Ssid::from_bytes(&bytes).unwrap();
        let line = Command::SetNetwork { id, field: NetworkField::Ssid(ssid) }.encode();
        prop_assert!(!line.contains('\n') && !line.contains('\0') && !line.contains('"'));
        prop_assert!(line.is_ascii());
        let tokens: Vec<&str> = line.split(' ').collect();
        prop_assert_eq!(tokens.len(), 4);
        prop_assert_eq!(tokens[0], "SET_NETWORK");
        prop_assert_eq!(tokens[2], "ssid");
        prop_assert_eq!(hex::decode(tokens[3]).unwrap(), bytes);
    }

    #[test]
    fn hex_fields_are_four_tokens(text in "\\PC{1,40}") {
        let mut fields = Vec::new();
        if let Ok(p) = SaePassword::parse(&text) { fields.push(NetworkField::SaePassword(p)); }
        if let Ok(p) = EapPassword::parse(&text) { fields.push(NetworkField::Password(p)); }
        if let Ok(i) = EapIdentity::parse(&text) { fields.push(NetworkField::Identity(i)); }
        for field in fields {
            let sensitive = field.is_sensitive();
            let command = Command::SetNetwork { id: 1, field };
            let line = command.encode();
            prop_assert!(!line.contains('\n') && !line.contains('\0'));
            let tokens: Vec<&str> = line.split(' ').collect();
            prop_assert_eq!(tokens.len(), 4);
            prop_assert_eq!(hex::decode(tokens[3]).unwrap(), text.as_bytes());
            if sensitive {
                prop_assert!(!command.redacted().contains(tokens[3]));
            }
        }
    }

    #[test]
    fn passphrase_survives_wpa_supplicant_quote_rule(text in "[ -~]{8,63}") {
        let pass = Passphrase::parse(&text).unwrap();
        let command = Command::SetNetwork { id: 0, field: NetworkField::Psk(pass) };
        let line = command.encode();
        prop_assert!(!line.contains('\n') && !line.contains('\0'));
        let value = line.strip_prefix("SET_NETWORK 0 psk ").unwrap();
        // wpa_supplicant: the value starts with `"` and ends at the LAST `"`.
        let end = value.rfind('"').unwrap();
        prop_assert_eq!(&value[1..end], text.as_str());
        prop_assert_eq!(end, value.len() - 1);
        prop_assert_eq!(command.redacted(), "SET_NETWORK 0 psk <redacted>");
    }

    #[test]
    fn validators_never_panic(text in replyish()) {
        let _ = Ssid::parse(&text);
        let _ = Passphrase::parse(&text);
        let _ = SaePassword::parse(&text);
        let _ = Bssid::parse(&text);
        let _ = validate::host(&text);
        let _ = validate::FilePath::parse(&text);
        let _ = validate::CountryCode::parse(&text);
        if let Ok(bssid) = Bssid::parse(&text) {
            prop_assert_eq!(Bssid::parse(&bssid.to_string()).unwrap(), bssid);
        }
        if let Ok(validate::Host::Name(name)) = validate::host(&text) {
            prop_assert!(!name.as_str().starts_with('-'));
            prop_assert!(name.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        }
    }

    #[test]
    fn parsers_never_panic(text in replyish()) {
        let _ = Bss::parse(&text);
        let _ = Status::parse(&text);
        let _ = ConfiguredNetwork::parse_list(&text);
        let _ = SignalPoll::parse(&text);
        let _ = parse_event(&text);
        let flags: Vec<&str> = text.split(['[', ']']).collect();
        let _ = Security::from_flags(&flags);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = Bss::parse(&text);
        let _ = Status::parse(&text);
        let _ = ConfiguredNetwork::parse_list(&text);
        let _ = parse_event(&text);
        let _ = printf_decode(&text);
    }

    #[test]
    fn ssids_round_trip_through_replies_and_events(bytes in ssid_bytes(), id in 0u32..1000) {
        let escaped = printf_encode(&bytes);
        let bss = Bss::parse(&format!("id={id}\nbssid=02:00:00:00:01:00\nssid={escaped}\nflags=[ESS]\n")).unwrap();
        prop_assert_eq!(bss.ssid_bytes(), bytes.clone());
        let status = Status::parse(&format!("wpa_state=COMPLETED\nssid={escaped}\n"));
        prop_assert_eq!(hex::decode(status.ssid_hex.unwrap()).unwrap(), bytes.clone());
        let list = ConfiguredNetwork::parse_list(&format!("network id / ssid / bssid / flags\n{id}\t{escaped}\tany\t[DISABLED]\n")).unwrap();
        prop_assert_eq!(list.len(), 1);
        prop_assert_eq!(hex::decode(&list[0].ssid_hex).unwrap(), bytes.clone());
        let event = parse_event(&format!(
            "<3>CTRL-EVENT-SSID-TEMP-DISABLED id={id} ssid=\"{escaped}\" auth_failures=1 duration=10 reason=WRONG_KEY"
        )).unwrap().event;
        prop_assert!(event.is_wrong_key());
        prop_assert_eq!(event, Event::SsidTempDisabled {
            id: Some(id),
            ssid: bytes.clone(),
            auth_failures: Some(1),
            duration_secs: Some(10),
            reason: Some("WRONG_KEY".into()),
        });
        let event = parse_event(&format!(
            "<3>Trying to associate with 02:00:00:00:01:00 (SSID='{escaped}' freq=2412 MHz)"
        )).unwrap().event;
        let Event::Associating { ssid, freq_mhz, .. } = event else { panic!("not associating") };
        prop_assert_eq!(ssid, bytes);
        prop_assert_eq!(freq_mhz, Some(2412));
    }
}
