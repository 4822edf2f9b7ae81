#!/usr/bin/env python3
"""Group a flat `perf report --no-children --sort sym --stdio` by where a
request's CPU goes: kernel (scheduler, TCP), h2 framing, HPACK, hyper, tonic,
protobuf, tokio, allocation, the http/bytes crates, Rescind's own code.

    perf report -i perf.data --no-children --sort sym --stdio > flat.txt
    python3 benches/tools/perf_categories.py flat.txt

The first matching rule wins, in the order below. On a VM without hardware
counters perf samples on `cpu-clock`, and kernel work done with interrupts
off is charged to the point they come back on (`_raw_spin_unlock_irqrestore`,
`finish_task_switch`): the "scheduler / wakeups" line.
"""
import sys, re, collections
cats = collections.OrderedDict()
rules = [
 ("kernel: scheduler / wakeups (task switch, irq restore)", lambda k,s: k and re.search(r"finish_task_switch|_raw_spin_unlock|schedule|try_to_wake|__switch_to|pick_next|dequeue|enqueue|update_curr|psi_", s)),
 ("kernel: TCP/IP, syscalls, epoll", lambda k,s: k),
 ("HPACK (h2::hpack, header block encode/decode)", lambda k,s: re.search(r"hpack|HeaderBlock|header::name::parse_hdr|headers::Iter", s)),
 ("h2 framing and stream state", lambda k,s: s.startswith("h2::") or "<h2::" in s),
 ("hyper (HTTP/2 glue, H2Stream task)", lambda k,s: "hyper" in s),
 ("tonic + tower (routing, codec, layers)", lambda k,s: "tonic" in s or "tower" in s or "axum" in s or "Routes" in s or "RevocationsServer" in s),
 ("protobuf (prost)", lambda k,s: "prost" in s or "encode" in s.lower() and "pb" in s),
 ("tokio (scheduler, I/O driver, timers)", lambda k,s: "tokio" in s or "epoll_wait" in s or "mio" in s),
 ("allocation (mimalloc) and memcpy", lambda k,s: re.search(r"^_?mi_|mi_free|mi_malloc|memmove|memcpy|memset|alloc::", s)),
 ("http / bytes crates (HeaderMap, Bytes)", lambda k,s: s.startswith("http::") or "<http::" in s or "bytes::" in s),
 ("Rescind's own code (auth, check, metrics)", lambda k,s: "rescind" in s),
 ("libc syscall wrappers, vdso clock", lambda k,s: re.search(r"__GI_|__libc|writev|vdso|clock_gettime|syscall|pthread", s)),
 ("other", lambda k,s: True),
]
for name,_ in rules: cats[name]=0.0
top = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+\[(.)\]\s+(.*)", line)
    if not m: continue
    pct, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    k = kind == "k"
    for name, f in rules:
        if f(k, sym):
            cats[name]+=pct; top[name].append((pct,sym)); break
total = sum(cats.values()) or 1.0
for name, v in sorted(cats.items(), key=lambda x: -x[1]):
    ex = ", ".join(s[:60] for p, s in sorted(top[name], reverse=True)[:2])
    print(f"{100 * v / total:6.1f}%  {name}   [{ex}]")
