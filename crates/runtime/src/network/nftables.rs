//! Just enough of nf_tables' netlink protocol to write a table of NAT rules, spoken directly
//! to the kernel so that the node needs no `nft` or `iptables` program (and no libnftnl).
//!
//! Changes go in one batch, which the kernel applies whole or not at all: a table is replaced
//! by adding it (a no-op if it exists), deleting it and building it again in the same batch.
//!
//! ```no_run
//! use runtime::network::nftables::{Batch, Expr};
//! let mut batch = Batch::new();
//! batch.add_table("demo");
//! batch.add_chain("demo", "post", Some(runtime::network::nftables::Hook::POSTROUTING_SRCNAT));
//! batch.add_rule("demo", "post", &[Expr::Masquerade]);
//! batch.send().unwrap();
//! ```

use anyhow::{Context, anyhow, bail};
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
/// skiff's tables are of the `ip` family: pods have IPv4 addresses.
const NFPROTO_IPV4: u8 = 2;
/// The register verdicts go to; data registers 1 to 4 hold 16 bytes each.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

/// A netlink attribute list (type-length-value, each padded to 4 bytes).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }

    fn str(&mut self, kind: u16, value: &str) -> &mut Self {
        self.put(kind, &[value.as_bytes(), &[0]].concat())
    }

    /// nf_tables takes its numbers in network byte order.
    fn u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.put(kind, &value.to_be_bytes())
    }

    fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        fill(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.0)
    }

    /// An `nft_data` value: NFTA_DATA_VALUE inside the attribute `kind`.
    fn data(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.nest(kind, |d| {
            d.put(1, value);
        })
    }
}

/// A base chain's place in the packet path: its netfilter hook and priority.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hook {
    pub hook: u32,
    pub priority: i32,
}

impl Hook {
    /// Destination NAT of packets coming in (priority dstnat).
    pub const PREROUTING_DSTNAT: Hook = Hook { hook: 0, priority: -100 };
    /// Destination NAT of packets this host sends (priority dstnat).
    pub const OUTPUT_DSTNAT: Hook = Hook { hook: 3, priority: -100 };
    /// Source NAT of packets going out (priority srcnat).
    pub const POSTROUTING_SRCNAT: Hook = Hook { hook: 4, priority: 100 };
}

/// Headers a payload expression reads from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Header {
    Network = 1,
    Transport = 2,
}

/// One step of a rule. Loads put their value in register 1, which masks and comparisons
/// work on.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Loads `len` bytes at `offset` in a header.
    Payload { header: Header, offset: u32, len: u32 },
    /// Masks the register with `mask`.
    And(Vec<u8>),
    /// Goes on only if the register equals `value` (`equal`) or differs from it.
    Cmp { equal: bool, value: Vec<u8> },
    /// Loads the layer 4 protocol number (one byte).
    L4Proto,
    /// Loads the conntrack status bits (host byte order).
    CtStatus,
    /// Loads the route type of the destination address (host byte order), as
    /// `fib daddr type` does.
    FibDaddrType,
    /// Continues in another chain of the table.
    Jump(String),
    /// Source NAT to the address of the interface the packet leaves by.
    Masquerade,
    /// Destination NAT to an address and port.
    Dnat(Ipv4Addr, u16),
}

impl Expr {
    /// Appends the kernel's expressions for this step: one, or for `Dnat` the address and
    /// port put in registers 1 and 2 and the `nat` that reads them.
    fn encode(&self, out: &mut Attrs) {
        let mut put = |(name, data): (&str, Attrs)| {
            out.nest(1, |elem| {
                elem.str(1, name);
                if !data.0.is_empty() {
                    elem.put(2 | NLA_F_NESTED, &data.0);
                }
            });
        };
        if let Expr::Dnat(address, port) = self {
            let immediate = |register: u32, value: &[u8]| {
                let mut a = Attrs::default();
                a.u32(1, register).data(2, value);
                ("immediate", a)
            };
            put(immediate(REG_1, &address.octets()));
            put(immediate(REG_2, &port.to_be_bytes()));
        }
        put(self.parts());
    }

    /// The kernel's name of the expression and its attributes.
    fn parts(&self) -> (&'static str, Attrs) {
        let mut a = Attrs::default();
        let name = match self {
            Expr::Payload { header, offset, len } => {
                a.u32(1, REG_1).u32(2, *header as u32).u32(3, *offset).u32(4, *len);
                "payload"
            }
            Expr::And(mask) => {
                a.u32(1, REG_1).u32(2, REG_1).u32(3, mask.len() as u32).data(4, mask).data(5, &vec![0; mask.len()]);
                "bitwise"
            }
            Expr::Cmp { equal, value } => {
                a.u32(1, REG_1).u32(2, if *equal { 0 } else { 1 }).data(3, value);
                "cmp"
            }
            Expr::L4Proto => {
                const NFT_META_L4PROTO: u32 = 16;
                a.u32(1, REG_1).u32(2, NFT_META_L4PROTO);
                "meta"
            }
            Expr::CtStatus => {
                const NFT_CT_STATUS: u32 = 2;
                a.u32(1, REG_1).u32(2, NFT_CT_STATUS);
                "ct"
            }
            Expr::FibDaddrType => {
                // Result: the address type; flags: look the destination address up.
                a.u32(1, REG_1).u32(2, 3).u32(3, 1 << 1);
                "fib"
            }
            Expr::Jump(chain) => {
                const NFT_JUMP: i32 = -3;
                a.u32(1, REG_VERDICT).nest(2, |d| {
                    d.nest(2, |v| {
                        v.u32(1, NFT_JUMP as u32).str(2, chain);
                    });
                });
                "immediate"
            }
            Expr::Masquerade => "masq",
            Expr::Dnat(..) => {
                const NFT_NAT_DNAT: u32 = 1;
                a.u32(1, NFT_NAT_DNAT).u32(2, NFPROTO_IPV4 as u32).u32(3, REG_1).u32(5, REG_2);
                "nat"
            }
        };
        (name, a)
    }
}

/// Changes to nf_tables, sent together and applied atomically.
#[derive(Default)]
pub struct Batch {
    /// Each message's type, flags and body (after the nfgenmsg header).
    messages: Vec<(u16, u16, Attrs)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds the table if it is not there.
    pub fn add_table(&mut self, table: &str) {
        let mut a = Attrs::default();
        a.str(1, table);
        self.messages.push((NFT_MSG_NEWTABLE, NLM_F_CREATE, a));
    }

    /// Deletes the table with everything in it (it must exist: add it first to be sure).
    pub fn delete_table(&mut self, table: &str) {
        let mut a = Attrs::default();
        a.str(1, table);
        self.messages.push((NFT_MSG_DELTABLE, 0, a));
    }

    /// Adds a chain: a base chain of type nat on `hook`, or a regular chain to jump to.
    pub fn add_chain(&mut self, table: &str, chain: &str, hook: Option<Hook>) {
        let mut a = Attrs::default();
        a.str(1, table).str(3, chain);
        if let Some(hook) = hook {
            a.nest(4, |h| {
                h.u32(1, hook.hook).u32(2, hook.priority as u32);
            });
            a.str(7, "nat");
        }
        self.messages.push((NFT_MSG_NEWCHAIN, NLM_F_CREATE, a));
    }

    /// Appends a rule to a chain.
    pub fn add_rule(&mut self, table: &str, chain: &str, exprs: &[Expr]) {
        let mut a = Attrs::default();
        a.str(1, table).str(2, chain).nest(4, |list| exprs.iter().for_each(|e| e.encode(list)));
        self.messages.push((NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, a));
    }

    /// The batch as netlink messages, numbered from `seq`: begin, each change (asking for
    /// an acknowledgement), end.
    fn encode(&self, seq: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut message = |kind: u16, flags: u16, family: u8, res_id: u16, body: &[u8], seq: u32| {
            let len = 16 + 4 + body.len();
            out.extend_from_slice(&(len as u32).to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
            out.extend_from_slice(&seq.to_ne_bytes());
            out.extend_from_slice(&0u32.to_ne_bytes());
            out.extend_from_slice(&[family, 0]);
            out.extend_from_slice(&res_id.to_be_bytes());
            out.extend_from_slice(body);
        };
        message(NFNL_MSG_BATCH_BEGIN, 0, 0, NFNL_SUBSYS_NFTABLES, &[], seq);
        for (i, (kind, flags, body)) in self.messages.iter().enumerate() {
            let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
            message(kind, flags | NLM_F_ACK, NFPROTO_IPV4, 0, &body.0, seq + 1 + i as u32);
        }
        message(NFNL_MSG_BATCH_END, 0, 0, NFNL_SUBSYS_NFTABLES, &[], seq + 1 + self.messages.len() as u32);
        out
    }

    /// Sends the batch and waits for the kernel to acknowledge every change; the first error
    /// it reports (say, ENOENT deleting a table that is not there) fails the whole batch.
    pub fn send(&self) -> anyhow::Result<()> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .context("opening a netfilter netlink socket")?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(5, 0))?;
        // Acknowledgements without a copy of each request: a large batch's would not fit.
        let on: libc::c_int = 1;
        // SAFETY: the option value is a c_int that outlives the call.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_CAP_ACK,
                &on as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let seq = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs() as u32);
        socket::sendto(fd.as_raw_fd(), &self.encode(seq), &NetlinkAddr::new(0, 0), MsgFlags::empty())
            .context("sending to nf_tables")?;
        let mut unacknowledged = self.messages.len();
        let mut buf = vec![0u8; 1 << 16];
        while unacknowledged > 0 {
            let n = socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .map_err(|e| anyhow!("waiting for nf_tables to answer: {e}"))?;
            for (kind, seq_of, error) in replies(&buf[..n]) {
                if kind != NLMSG_ERROR {
                    continue;
                }
                if error != 0 {
                    let change = seq_of.wrapping_sub(seq + 1) as usize;
                    let what = self.messages.get(change).map_or("the batch", |(kind, ..)| describe(*kind));
                    bail!("nf_tables refused {what}: {}", std::io::Error::from_raw_os_error(-error));
                }
                unacknowledged -= 1;
            }
        }
        Ok(())
    }
}

fn describe(kind: u16) -> &'static str {
    match kind {
        NFT_MSG_NEWTABLE => "adding a table",
        NFT_MSG_DELTABLE => "deleting a table",
        NFT_MSG_NEWCHAIN => "adding a chain",
        _ => "adding a rule",
    }
}

/// Each netlink message in a datagram: its type, sequence number and, for NLMSG_ERROR, the
/// error (0 for an acknowledgement).
fn replies(mut buf: &[u8]) -> Vec<(u16, u32, i32)> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        if len < 16 || len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[8..12].try_into().unwrap());
        let error = buf.get(16..20).map_or(0, |e| i32::from_ne_bytes(e.try_into().unwrap()));
        out.push((kind, seq, error));
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut a = Attrs::default();
        a.str(1, "skiff").nest(4, |h| {
            h.u32(2, (-100i32) as u32);
        });
        let ne = |n: u16| n.to_ne_bytes();
        let mut expected = Vec::new();
        expected.extend([ne(10), ne(1)].concat());
        expected.extend(b"skiff\0\0\0");
        expected.extend([ne(12), ne(4 | NLA_F_NESTED), ne(8), ne(2)].concat());
        expected.extend([0xff, 0xff, 0xff, 0x9c]);
        assert_eq!(a.0, expected);
    }

    #[test]
    fn a_batch_is_framed_and_numbered() {
        let mut batch = Batch::new();
        batch.add_table("skiff");
        batch.add_rule("skiff", "post", &[Expr::Masquerade]);
        let bytes = batch.encode(7);
        let messages = replies(&bytes);
        let kinds: Vec<u16> = messages.iter().map(|m| m.0).collect();
        assert_eq!(kinds, [0x10, 0x0a00, 0x0a06, 0x11]);
        let seqs: Vec<u32> = messages.iter().map(|m| m.1).collect();
        assert_eq!(seqs, [7, 8, 9, 10]);
        // The rule's one expression is named "masq" and has no data.
        let rule = &batch.messages[1].2.0;
        let masq = rule.windows(5).position(|w| w == b"masq\0").expect("no masq expression");
        assert_eq!(rule.len(), masq + 8, "masq carries no attributes");
    }

    #[test]
    fn a_dnat_puts_its_address_and_port_in_registers_one_and_two() {
        let mut out = Attrs::default();
        Expr::Dnat(Ipv4Addr::new(10, 42, 0, 5), 8080).encode(&mut out);
        let names: Vec<usize> = ["immediate", "immediate", "nat"]
            .iter()
            .scan(0, |from, name| {
                let at = *from + out.0[*from..].windows(name.len()).position(|w| w == name.as_bytes())?;
                *from = at + 1;
                Some(at)
            })
            .collect();
        assert_eq!(names.len(), 3, "two immediates, then nat");
        let mut address = Attrs::default();
        address.u32(1, 1).data(2, &[10, 42, 0, 5]);
        let mut port = Attrs::default();
        port.u32(1, 2).data(2, &[0x1f, 0x90]);
        let mut nat = Attrs::default();
        nat.u32(1, 1).u32(2, 2).u32(3, 1).u32(5, 2);
        for data in [address, port, nat] {
            assert!(out.0.windows(data.0.len()).any(|w| w == data.0), "missing {:?}", data.0);
        }
    }
}
