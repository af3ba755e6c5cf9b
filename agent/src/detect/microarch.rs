//! The CPU microarchitecture, classified from vendor, family, model, flags and ARM part number.
//!
//! The classification only has to be as fine as the peak tables in [`super::rates`] need:
//! two CPUs in one class have the same per-core, per-cycle throughput.

use std::fmt;

use super::cpuinfo::CpuInfo;

/// A microarchitecture class with one per-cycle throughput table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Microarch {
    /// AMD Zen 2 (family 23 = 0x17, model ≥ 0x30): 2 × 256-bit FMA.
    Zen2,
    /// AMD Zen 3 (family 25 = 0x19 without AVX-512): 2 × 256-bit FMA.
    Zen3,
    /// AMD Zen 4 (family 25 = 0x19 with `avx512f`): AVX-512 double-pumped on 2 × 256-bit FMA.
    Zen4,
    /// AMD Zen 5 (family 26 = 0x1a): 2 full 512-bit FMA pipes.
    Zen5,
    /// Intel server cores with AVX-512 (Skylake-SP, Ice Lake-SP, Sapphire Rapids): 2 × 512-bit FMA.
    IntelAvx512,
    /// Intel hybrid client cores (Alder Lake, Raptor Lake): AVX2, P-core 2 × 256-bit FMA.
    IntelAvx2Hybrid,
    /// Other Intel cores with AVX2 (Haswell to Comet Lake): 2 × 256-bit FMA.
    IntelAvx2,
    /// Arm Cortex-A78 / A78AE / A78C (Jetson Orin): 2 × 128-bit NEON FMA.
    CortexA78,
    /// Arm Neoverse N1 (Graviton 2, Ampere Altra): 2 × 128-bit NEON FMA.
    NeoverseN1,
    /// Arm Neoverse V1 (Graviton 3): 4 × 128-bit NEON (2 × 256-bit SVE).
    NeoverseV1,
    /// Arm Neoverse V2 (Grace, Graviton 4): 4 × 128-bit NEON/SVE2.
    NeoverseV2,
    /// Any other x86-64 CPU: the table is built from its flags.
    GenericX86,
    /// Any other ARM CPU: 2 × 128-bit NEON assumed.
    GenericArm,
}

/// Intel family-6 model numbers of the hybrid (P-core + E-core) client parts.
const INTEL_HYBRID_MODELS: [u32; 8] = [
    0x97, // Alder Lake-S
    0x9a, // Alder Lake-P
    0xb7, // Raptor Lake-S
    0xba, // Raptor Lake-P
    0xbf, // Raptor Lake-S refresh
    0xaa, // Meteor Lake
    0xbd, // Lunar Lake
    0xc6, // Arrow Lake
];

impl Microarch {
    /// Classifies a CPU; anything unrecognised is [`Microarch::GenericX86`] or
    /// [`Microarch::GenericArm`].
    pub fn classify(cpu: &CpuInfo) -> Microarch {
        if cpu.is_arm() {
            return Microarch::classify_arm(cpu);
        }
        match cpu.vendor.as_str() {
            "AuthenticAMD" => match (cpu.family, cpu.model) {
                (Some(23), Some(model)) if model >= 0x30 => Microarch::Zen2,
                (Some(25), _) if cpu.has("avx512f") => Microarch::Zen4,
                (Some(25), _) => Microarch::Zen3,
                (Some(26), _) => Microarch::Zen5,
                _ => Microarch::GenericX86,
            },
            "GenuineIntel" => {
                let hybrid_model = cpu.family == Some(6)
                    && cpu.model.is_some_and(|m| INTEL_HYBRID_MODELS.contains(&m));
                if cpu.has("avx512f") {
                    Microarch::IntelAvx512
                } else if cpu.has("hybrid_cpu") || hybrid_model {
                    Microarch::IntelAvx2Hybrid
                } else if cpu.has("avx2") && cpu.has("fma") {
                    Microarch::IntelAvx2
                } else {
                    Microarch::GenericX86
                }
            }
            _ => Microarch::GenericX86,
        }
    }

    fn classify_arm(cpu: &CpuInfo) -> Microarch {
        if cpu.arm_implementer != Some(0x41) {
            return Microarch::GenericArm;
        }
        match cpu.arm_part {
            Some(0xd41 | 0xd42 | 0xd4b) => Microarch::CortexA78,
            Some(0xd0c) => Microarch::NeoverseN1,
            Some(0xd40) => Microarch::NeoverseV1,
            Some(0xd4f) => Microarch::NeoverseV2,
            _ => Microarch::GenericArm,
        }
    }

    /// The display name (`Zen 5`, `Cortex-A78`).
    pub fn name(self) -> &'static str {
        match self {
            Microarch::Zen2 => "Zen 2",
            Microarch::Zen3 => "Zen 3",
            Microarch::Zen4 => "Zen 4",
            Microarch::Zen5 => "Zen 5",
            Microarch::IntelAvx512 => "Intel AVX-512 server core",
            Microarch::IntelAvx2Hybrid => "Intel hybrid (Alder/Raptor Lake) P-core",
            Microarch::IntelAvx2 => "Intel AVX2 core",
            Microarch::CortexA78 => "Cortex-A78",
            Microarch::NeoverseN1 => "Neoverse N1",
            Microarch::NeoverseV1 => "Neoverse V1",
            Microarch::NeoverseV2 => "Neoverse V2",
            Microarch::GenericX86 => "generic x86-64",
            Microarch::GenericArm => "generic ARM",
        }
    }

    /// Whether this is an ARM class.
    pub fn is_arm(self) -> bool {
        matches!(
            self,
            Microarch::CortexA78
                | Microarch::NeoverseN1
                | Microarch::NeoverseV1
                | Microarch::NeoverseV2
                | Microarch::GenericArm
        )
    }
}

impl fmt::Display for Microarch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpuinfo::parse_cpuinfo;
    use super::*;

    fn classify(text: &str) -> Microarch {
        Microarch::classify(&parse_cpuinfo(text))
    }

    #[test]
    fn fixtures_classify() {
        assert_eq!(
            classify(include_str!("fixtures/cpuinfo-zen4.txt")),
            Microarch::Zen4
        );
        assert_eq!(
            classify(include_str!("fixtures/cpuinfo-zen5.txt")),
            Microarch::Zen5
        );
        assert_eq!(
            classify(include_str!("fixtures/cpuinfo-alder-lake.txt")),
            Microarch::IntelAvx2Hybrid
        );
        assert_eq!(
            classify(include_str!("fixtures/cpuinfo-orin.txt")),
            Microarch::CortexA78
        );
    }

    fn x86(vendor: &str, family: u32, model: u32, flags: &str) -> CpuInfo {
        CpuInfo {
            vendor: vendor.into(),
            family: Some(family),
            model: Some(model),
            flags: flags.split_whitespace().map(str::to_string).collect(),
            ..CpuInfo::default()
        }
    }

    #[test]
    fn family_25_splits_on_avx512() {
        let zen3 = x86("AuthenticAMD", 25, 0x21, "avx2 fma");
        let zen4 = x86("AuthenticAMD", 25, 0x61, "avx2 fma avx512f");
        assert_eq!(Microarch::classify(&zen3), Microarch::Zen3);
        assert_eq!(Microarch::classify(&zen4), Microarch::Zen4);
        let zen2 = x86("AuthenticAMD", 23, 0x31, "avx2 fma");
        assert_eq!(Microarch::classify(&zen2), Microarch::Zen2);
        let zen1 = x86("AuthenticAMD", 23, 0x01, "avx2 fma");
        assert_eq!(Microarch::classify(&zen1), Microarch::GenericX86);
    }

    #[test]
    fn intel_classes() {
        let spr = x86("GenuineIntel", 6, 0x8f, "avx2 fma avx512f amx_bf16");
        let skylake = x86("GenuineIntel", 6, 0x5e, "avx2 fma");
        let raptor = x86("GenuineIntel", 6, 0xb7, "avx2 fma avx_vnni");
        let atom = x86("GenuineIntel", 6, 0x5c, "sse4_2");
        assert_eq!(Microarch::classify(&spr), Microarch::IntelAvx512);
        assert_eq!(Microarch::classify(&skylake), Microarch::IntelAvx2);
        assert_eq!(Microarch::classify(&raptor), Microarch::IntelAvx2Hybrid);
        assert_eq!(Microarch::classify(&atom), Microarch::GenericX86);
        let hygon = x86("HygonGenuine", 24, 0, "avx2 fma");
        assert_eq!(Microarch::classify(&hygon), Microarch::GenericX86);
    }

    #[test]
    fn arm_parts() {
        let arm = |implementer: u32, part: u32| CpuInfo {
            arm_implementer: Some(implementer),
            arm_part: Some(part),
            ..CpuInfo::default()
        };
        assert_eq!(Microarch::classify(&arm(0x41, 0xd41)), Microarch::CortexA78);
        assert_eq!(
            Microarch::classify(&arm(0x41, 0xd0c)),
            Microarch::NeoverseN1
        );
        assert_eq!(
            Microarch::classify(&arm(0x41, 0xd40)),
            Microarch::NeoverseV1
        );
        assert_eq!(
            Microarch::classify(&arm(0x41, 0xd4f)),
            Microarch::NeoverseV2
        );
        assert_eq!(
            Microarch::classify(&arm(0x41, 0xd03)),
            Microarch::GenericArm
        );
        assert_eq!(
            Microarch::classify(&arm(0x61, 0x022)),
            Microarch::GenericArm
        );
        assert!(Microarch::GenericArm.is_arm() && !Microarch::Zen5.is_arm());
    }
}
