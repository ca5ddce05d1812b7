//! CIDR lists (`--trusted-proxies`), and the address checks made with them. The first 16
//! bytes are an address to check; the rest a comma-separated list.

#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use restart_manager::auth::Cidr;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (addr, list) = data.split_at(16);
    let mut octets = [0u8; 16];
    octets.copy_from_slice(addr);
    let v6 = Ipv6Addr::from(octets);
    let addrs = [
        IpAddr::V6(v6),
        v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
    ];
    let Ok(list) = std::str::from_utf8(list) else {
        return;
    };
    for item in list.split(',') {
        if let Ok(cidr) = item.trim().parse::<Cidr>() {
            // What parses prints back to something that parses to the same.
            let again: Cidr = cidr.to_string().parse().expect("the printed form parses");
            assert_eq!(again.to_string(), cidr.to_string());
            for a in addrs {
                assert_eq!(cidr.contains(a), again.contains(a));
            }
        }
    }
});
