//! Per-core, per-cycle throughput tables: how many FLOPs (or integer ops) one core can retire
//! per clock at each precision.
//!
//! Every rate is `lanes per pipe × pipes × 2`: the lanes of the precision that one pipe's
//! datapath holds, the pipes that can issue the instruction every cycle, and 2 ops per lane
//! because each is a multiply-add (an FMA, a dot-product step, or a multiply and an add on
//! separate pipes). The datapath of each [`Microarch`] is in [`datapath`]; which instruction a
//! precision uses depends on the CPU's flags (VNNI, `avx512_bf16`, AMX, `asimddp`, ...).
//! A precision with no native multiply-add on the CPU is left out, with the reason.

use std::collections::BTreeMap;

use fleetcal_proto::Precision;

use super::cpuinfo::CpuInfo;
use super::microarch::Microarch;

/// One precision's rate on one core: `lanes × pipes × ops_per_lane` ops per cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct PerCycle {
    /// Elements of this precision in one pipe's datapath (or, for AMX, multiply-adds per cycle).
    pub lanes: u32,
    /// Pipes issuing the instruction every cycle.
    pub pipes: u32,
    /// Ops per lane per instruction: 2 for a multiply-add.
    pub ops_per_lane: u32,
    /// The instruction the rate assumes.
    pub instruction: &'static str,
}

impl PerCycle {
    /// Ops (FLOPs or integer ops) per cycle per core.
    pub fn ops(&self) -> f64 {
        f64::from(self.lanes * self.pipes * self.ops_per_lane)
    }

    /// `64 = 16 lanes x 2 pipes x 2 (vfmadd231ps)`, for the derivation.
    pub fn describe(&self) -> String {
        format!(
            "{} = {} lanes x {} pipes x {} ({})",
            self.ops(),
            self.lanes,
            self.pipes,
            self.ops_per_lane,
            self.instruction
        )
    }
}

/// The vector datapath of one core: width and pipe count for floating point and integers.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapath {
    /// Bits per FMA pipe.
    pub fma_bits: u32,
    /// FMA pipes (a CPU without FMA counts its multiply + add pipe pair as one).
    pub fma_pipes: u32,
    /// Bits per vector integer multiply pipe.
    pub int_bits: u32,
    /// Vector integer multiply(-add) pipes.
    pub int_pipes: u32,
    /// Where the figures come from, for the derivation.
    pub note: &'static str,
}

/// The per-cycle table of one CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct RateTable {
    /// The datapath the rates were built from.
    pub datapath: Datapath,
    /// Ops per cycle per core for every precision with a native multiply-add.
    pub rates: BTreeMap<Precision, PerCycle>,
    /// Why each remaining precision has no peak.
    pub omitted: BTreeMap<Precision, &'static str>,
}

/// The datapath of a microarchitecture (generic classes read the flags).
pub fn datapath(arch: Microarch, cpu: &CpuInfo) -> Datapath {
    let dp = |fma_bits, fma_pipes, int_bits, int_pipes, note| Datapath {
        fma_bits,
        fma_pipes,
        int_bits,
        int_pipes,
        note,
    };
    match arch {
        Microarch::Zen2 | Microarch::Zen3 => dp(256, 2, 256, 2, "2 x 256-bit FMA pipes"),
        Microarch::Zen4 => dp(256, 2, 256, 2,
            "2 x 256-bit FMA pipes; 512-bit instructions are double-pumped, so AVX-512 gives the same FLOP/cycle as AVX2"),
        Microarch::Zen5 if cpu.model.is_some_and(|m| (0x20..0x30).contains(&m) || (0x60..0x70).contains(&m)) =>
            dp(256, 2, 256, 2, "mobile Zen 5 (Strix/Krackan Point): 2 x 256-bit FMA pipes"),
        Microarch::Zen5 => dp(512, 2, 512, 1,
            "2 full 512-bit FMA pipes; vector integer multiply-add (VNNI) counted on one 512-bit pipe, which agrees with the measured int8 dot rate (facts.md: ~1100 GIOPS on 2 cores at ~4.05 GHz)"),
        Microarch::IntelAvx512 => dp(512, 2, 512, 2,
            "2 x 512-bit FMA units (ports 0+1 fused and port 5); parts with one 512-bit FMA unit reach half"),
        Microarch::IntelAvx2Hybrid => dp(256, 2, 256, 2,
            "P-core 2 x 256-bit FMA; every core is counted as a P-core, so with E-cores (2 x 128-bit) this is an upper bound"),
        Microarch::IntelAvx2 => dp(256, 2, 256, 2, "2 x 256-bit FMA pipes"),
        Microarch::CortexA78 | Microarch::NeoverseN1 => dp(128, 2, 128, 2, "2 x 128-bit NEON pipes"),
        Microarch::NeoverseV1 => dp(128, 4, 128, 4, "4 x 128-bit NEON pipes (= 2 x 256-bit SVE)"),
        Microarch::NeoverseV2 => dp(128, 4, 128, 4, "4 x 128-bit NEON/SVE2 pipes"),
        Microarch::GenericArm => dp(128, 2, 128, 2, "unknown ARM core: 2 x 128-bit NEON pipes assumed"),
        Microarch::GenericX86 => {
            let fma_bits = if cpu.has("avx512f") { 512 } else if cpu.has("avx") { 256 } else { 128 };
            let int_bits = if cpu.has("avx512f") { 512 } else if cpu.has("avx2") { 256 } else { 128 };
            if cpu.has("fma") {
                dp(fma_bits, 2, int_bits, 2, "unknown x86 core: widest vector from the flags, 2 FMA pipes assumed")
            } else {
                dp(fma_bits, 1, int_bits, 1,
                    "unknown x86 core without FMA: widest vector from the flags, one multiply and one add pipe assumed")
            }
        }
    }
}

/// The per-cycle table of a CPU of class `arch`.
pub fn rate_table(arch: Microarch, cpu: &CpuInfo) -> RateTable {
    let datapath = datapath(arch, cpu);
    let mut table = RateTable {
        datapath,
        rates: BTreeMap::new(),
        omitted: BTreeMap::new(),
    };
    if arch.is_arm() {
        arm_rates(cpu, &mut table);
    } else {
        x86_rates(cpu, &mut table);
    }
    table
}

fn x86_rates(cpu: &CpuInfo, t: &mut RateTable) {
    let (fb, fp, ib, ip) = (
        t.datapath.fma_bits,
        t.datapath.fma_pipes,
        t.datapath.int_bits,
        t.datapath.int_pipes,
    );
    let fma = cpu.has("fma");
    let rate = |lanes, pipes, instruction| PerCycle {
        lanes,
        pipes,
        ops_per_lane: 2,
        instruction,
    };
    let f64_insn = if fma { "vfmadd231pd" } else { "mulpd + addpd" };
    let f32_insn = if fma { "vfmadd231ps" } else { "mulps + addps" };
    t.rates.insert(Precision::Fp64, rate(fb / 64, fp, f64_insn));
    t.rates.insert(Precision::Fp32, rate(fb / 32, fp, f32_insn));
    if cpu.has("avx512_fp16") {
        t.rates
            .insert(Precision::Fp16, rate(fb / 16, fp, "vfmadd231ph"));
    } else {
        t.omitted.insert(Precision::Fp16,
            "no native fp16 arithmetic (no avx512_fp16): fp16 is converted to fp32 (f16c), so no fp16 peak is derived");
    }
    if cpu.has("amx_bf16") {
        t.rates.insert(
            Precision::Bf16,
            rate(512, 1, "AMX tdpbf16ps: 512 bf16 multiply-adds per cycle"),
        );
    } else if cpu.has("avx512_bf16") {
        t.rates.insert(
            Precision::Bf16,
            rate(fb / 16, fp, "vdpbf16ps: bf16 pair dot product into fp32"),
        );
    } else {
        t.omitted.insert(
            Precision::Bf16,
            "no bf16 dot-product instruction (no avx512_bf16 or amx_bf16): no bf16 peak is derived",
        );
    }
    let vnni = cpu.has("avx512_vnni") || cpu.has("avx_vnni");
    // AVX-VNNI without AVX-512 is 256-bit, which is what `int_bits` already is on such parts.
    if cpu.has("amx_int8") {
        t.rates.insert(
            Precision::Int8,
            rate(1024, 1, "AMX tdpbusd: 1024 int8 multiply-adds per cycle"),
        );
    } else if vnni {
        t.rates.insert(
            Precision::Int8,
            rate(ib / 8, ip, "vpdpbusd: u8 x s8 dot product into int32"),
        );
    } else {
        t.rates.insert(
            Precision::Int8,
            rate(
                ib / 16,
                ip,
                "no VNNI: int8 is widened to int16 (vpmaddubsw), so it runs at the int16 lane rate",
            ),
        );
    }
    let i16_insn = if vnni {
        "vpdpwssd"
    } else {
        "vpmaddwd + vpaddd"
    };
    t.rates
        .insert(Precision::Int16, rate(ib / 16, ip, i16_insn));
    t.rates.insert(Precision::Int32, rate(ib / 32, ip,
        "vpmulld + vpaddd: no fused int32 multiply-add; vpmulld is 2 uops on Intel, so an upper bound there"));
    if cpu.has("avx512dq") {
        t.rates.insert(
            Precision::Int64,
            rate(
                ib / 64,
                ip,
                "vpmullq + vpaddq: upper bound, vpmullq is multi-uop on most cores",
            ),
        );
    } else {
        t.rates.insert(
            Precision::Int64,
            rate(
                1,
                1,
                "scalar imul + add: no SIMD 64-bit multiply before AVX-512DQ",
            ),
        );
    }
}

fn arm_rates(cpu: &CpuInfo, t: &mut RateTable) {
    let (fb, fp, ib, ip) = (
        t.datapath.fma_bits,
        t.datapath.fma_pipes,
        t.datapath.int_bits,
        t.datapath.int_pipes,
    );
    let rate = |lanes, pipes, instruction| PerCycle {
        lanes,
        pipes,
        ops_per_lane: 2,
        instruction,
    };
    t.rates
        .insert(Precision::Fp64, rate(fb / 64, fp, "FMLA .2D"));
    t.rates
        .insert(Precision::Fp32, rate(fb / 32, fp, "FMLA .4S"));
    if cpu.has("asimdhp") {
        t.rates
            .insert(Precision::Fp16, rate(fb / 16, fp, "FMLA .8H (asimdhp)"));
    } else {
        t.omitted.insert(
            Precision::Fp16,
            "no half-precision SIMD arithmetic (no asimdhp): no fp16 peak is derived",
        );
    }
    if cpu.has("bf16") {
        t.rates.insert(
            Precision::Bf16,
            rate(fb / 16, fp, "BFDOT: bf16 pair dot product into fp32"),
        );
    } else {
        t.omitted.insert(
            Precision::Bf16,
            "no bf16 instructions (no bf16 feature): no bf16 peak is derived",
        );
    }
    if cpu.has("asimddp") {
        t.rates.insert(
            Precision::Int8,
            rate(
                ib / 8,
                ip,
                "SDOT: int8 dot product into int32 (i8mm SMMLA, where present, is not counted)",
            ),
        );
    } else {
        t.rates.insert(
            Precision::Int8,
            rate(
                ib / 16,
                ip,
                "no dot product: SMLAL widens int8 to int16, so it runs at the int16 lane rate",
            ),
        );
    }
    t.rates
        .insert(Precision::Int16, rate(ib / 16, ip, "MLA .8H"));
    t.rates
        .insert(Precision::Int32, rate(ib / 32, ip, "MLA .4S"));
    t.rates.insert(
        Precision::Int64,
        rate(1, 1, "scalar MADD: NEON has no 64-bit lane multiply"),
    );
}

#[cfg(test)]
mod tests {
    use super::super::cpuinfo::parse_cpuinfo;
    use super::*;

    fn table(text: &str) -> RateTable {
        let cpu = parse_cpuinfo(text);
        rate_table(Microarch::classify(&cpu), &cpu)
    }

    fn ops(t: &RateTable, p: Precision) -> Option<f64> {
        t.rates.get(&p).map(PerCycle::ops)
    }

    #[test]
    fn zen4_is_double_pumped() {
        let t = table(include_str!("fixtures/cpuinfo-zen4.txt"));
        assert_eq!(ops(&t, Precision::Fp32), Some(32.0));
        assert_eq!(ops(&t, Precision::Fp64), Some(16.0));
        assert_eq!(ops(&t, Precision::Bf16), Some(64.0));
        assert_eq!(ops(&t, Precision::Int8), Some(128.0));
        assert_eq!(ops(&t, Precision::Fp16), None);
        assert!(t.omitted[&Precision::Fp16].contains("avx512_fp16"));
    }

    #[test]
    fn zen5_has_full_width_fma() {
        let t = table(include_str!("fixtures/cpuinfo-zen5.txt"));
        assert_eq!(ops(&t, Precision::Fp32), Some(64.0));
        assert_eq!(ops(&t, Precision::Fp64), Some(32.0));
        assert_eq!(ops(&t, Precision::Bf16), Some(128.0));
        assert_eq!(ops(&t, Precision::Int8), Some(128.0));
        assert_eq!(ops(&t, Precision::Int16), Some(64.0));
        assert_eq!(ops(&t, Precision::Int64), Some(16.0));
        assert_eq!(
            t.rates[&Precision::Fp32].describe(),
            "64 = 16 lanes x 2 pipes x 2 (vfmadd231ps)"
        );
    }

    #[test]
    fn alder_lake_p_core() {
        let t = table(include_str!("fixtures/cpuinfo-alder-lake.txt"));
        assert_eq!(ops(&t, Precision::Fp32), Some(32.0));
        assert_eq!(ops(&t, Precision::Fp64), Some(16.0));
        assert_eq!(ops(&t, Precision::Int8), Some(128.0));
        assert_eq!(ops(&t, Precision::Int64), Some(2.0));
        assert!(t.omitted.contains_key(&Precision::Bf16));
        assert!(t.datapath.note.contains("upper bound"));
    }

    #[test]
    fn cortex_a78_neon() {
        let t = table(include_str!("fixtures/cpuinfo-orin.txt"));
        assert_eq!(ops(&t, Precision::Fp32), Some(16.0));
        assert_eq!(ops(&t, Precision::Fp64), Some(8.0));
        assert_eq!(ops(&t, Precision::Fp16), Some(32.0));
        assert_eq!(ops(&t, Precision::Int8), Some(64.0));
        assert_eq!(ops(&t, Precision::Int32), Some(16.0));
        assert!(t.omitted.contains_key(&Precision::Bf16));
    }

    #[test]
    fn intel_server_flags_pick_the_instruction() {
        let cpu = |flags: &str| CpuInfo {
            vendor: "GenuineIntel".into(),
            family: Some(6),
            model: Some(0x8f),
            flags: flags.split_whitespace().map(str::to_string).collect(),
            ..CpuInfo::default()
        };
        let icx = cpu("fma avx2 avx512f avx512dq avx512_vnni");
        let t = rate_table(Microarch::classify(&icx), &icx);
        assert_eq!(ops(&t, Precision::Fp32), Some(64.0));
        assert_eq!(ops(&t, Precision::Int8), Some(256.0));
        assert!(t.omitted.contains_key(&Precision::Bf16));
        let spr = cpu("fma avx2 avx512f avx512_fp16 avx512_bf16 amx_bf16 amx_int8");
        let t = rate_table(Microarch::classify(&spr), &spr);
        assert_eq!(ops(&t, Precision::Fp16), Some(128.0));
        assert_eq!(ops(&t, Precision::Bf16), Some(1024.0));
        assert_eq!(ops(&t, Precision::Int8), Some(2048.0));
    }

    #[test]
    fn every_table_has_every_precision_rated_or_explained() {
        for text in [
            include_str!("fixtures/cpuinfo-zen4.txt"),
            include_str!("fixtures/cpuinfo-orin.txt"),
            "",
        ] {
            let t = table(text);
            for p in Precision::ALL {
                assert!(
                    t.rates.contains_key(&p) != t.omitted.contains_key(&p),
                    "{p:?}"
                );
            }
            assert!(t.rates.values().all(|r| r.ops() > 0.0));
        }
    }
}
