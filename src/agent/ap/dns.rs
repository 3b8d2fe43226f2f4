//! The access point's DNS answer: a UDP responder on the box's AP address, port 53, that
//! knows one name ([`super::conf::ApSettings::dns_name`]) and answers `A` with the box's
//! address. Every other name is `NXDOMAIN`; `AAAA` (or another type) of the name is an empty
//! `NOERROR`. It forwards nothing anywhere.
//!
//! Bounded: one datagram at a time, 512 bytes read, one question answered, malformed packets
//! dropped, nothing kept between queries. The clients are the AP's stations — untrusted.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// The TTL of the answer, seconds.
const TTL: u32 = 60;

/// The reply to the query `packet`, or `None` for anything not a single standard query.
pub fn answer(packet: &[u8], name: &str, ip: Ipv4Addr) -> Option<Vec<u8>> {
    let q = Message::from_vec(packet).ok()?;
    if q.metadata.message_type != MessageType::Query || q.queries.len() != 1 {
        return None;
    }
    let question = q.queries[0].clone();
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    let asked = question.name().to_ascii();
    let asked = asked.trim_end_matches('.').to_ascii_lowercase();
    r.add_query(question.clone());
    if asked != name {
        r.metadata.response_code = ResponseCode::NXDomain;
    } else if question.query_type() == RecordType::A {
        r.add_answer(Record::from_rdata(
            question.name().clone(),
            TTL,
            RData::A(A(ip)),
        ));
    }
    r.to_vec().ok()
}

/// Answer on `sock` until `stop`.
pub async fn serve(sock: UdpSocket, name: String, ip: Ipv4Addr, stop: CancellationToken) {
    let mut buf = [0u8; 512];
    loop {
        let got = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            _ = stop.cancelled() => return,
        };
        let Ok((n, from)) = got else { continue };
        if let Some(reply) = answer(&buf[..n], &name, ip) {
            let _ = sock.send_to(&reply, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    const IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);

    #[test]
    fn answers_a_for_its_one_name_and_nxdomain_for_others() {
        let r = Message::from_vec(
            &answer(&query("AP.home.arpa.", RecordType::A), "ap.home.arpa", IP).unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].data, RData::A(A(IP)));
        let r = Message::from_vec(
            &answer(
                &query("ap.home.arpa.", RecordType::AAAA),
                "ap.home.arpa",
                IP,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let r = Message::from_vec(
            &answer(&query("example.com.", RecordType::A), "ap.home.arpa", IP).unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.answers.is_empty());
    }

    #[test]
    fn garbage_and_responses_get_no_reply() {
        assert!(answer(&[], "a", IP).is_none());
        assert!(answer(&[0xff; 40], "a", IP).is_none());
        let mut resp = Message::response(7, hickory_proto::op::OpCode::Query);
        resp.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        assert!(answer(&resp.to_vec().unwrap(), "a", IP).is_none());
        let mut two = Message::query();
        two.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        two.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        assert!(answer(&two.to_vec().unwrap(), "a", IP).is_none());
    }

    #[tokio::test]
    async fn serves_on_a_socket_until_stopped() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(sock, "ap.home.arpa".into(), IP, stop.clone()));
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(&query("ap.home.arpa.", RecordType::A), addr)
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), c.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let r = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(r.answers[0].data, RData::A(A(IP)));
        stop.cancel();
        task.await.unwrap();
    }
}
