"""The machine a benchmark ran on, for the tables: CPU model, its microarchitecture where the
family and model numbers say it (sessions do not always get the same processor: "AMD EPYC"
has been a Zen 4 and a Zen 5), cores, kernel."""
import os
import platform

# AMD family 25: Zen 3 (models 0x00-0x0f, 0x20-0x5f), Zen 4 (0x10-0x1f, 0x60-0x7f, 0xa0-0xaf);
# family 26: Zen 5.
def _amd(family, model):
    if family == 26:
        return "Zen 5"
    if family == 25:
        return "Zen 4" if 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF else "Zen 3"
    if family == 23:
        return "Zen 2" if model >= 0x30 else "Zen/Zen+"
    return ""


def cpu():
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            if ":" in line:
                k, v = line.split(":", 1)
                info.setdefault(k.strip(), v.strip())
    except OSError:
        return "unknown CPU"
    name = info.get("model name", "unknown CPU")
    try:
        family, model = int(info.get("cpu family", "0")), int(info.get("model", "0"))
    except ValueError:
        return name
    flags = info.get("flags", "").split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    arch = _amd(family, model) if "AMD" in info.get("vendor_id", "") else ""
    detail = ", ".join(x for x in (arch, f"family {family} model {model}", isa) if x)
    return f"{name} ({detail})"


def describe():
    return f"{cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


if __name__ == "__main__":
    print(describe())
