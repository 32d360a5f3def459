// Compiled stream harness: streams images through a verilated AXI4-Stream accelerator.
//
// Built by hdlgen.sim.harness together with the design (verilator --cc --exe --prefix Vtop);
// it does what the cocotb bench sim/bench_axis.py does, cycle for cycle, without an
// interpreter in the loop:
//
//   harness --beats FILE --images N --lanes L --stall-in P --stall-out P --seed S
//           --timeout T --reset R --drain D --result FILE
//
// FILE (--beats) holds N * beats-per-image beats of L bytes each, lane 0 first (the bytes of
// the images in row-major order, channel fastest). Random stalls come from the same Mersenne
// Twister as Python's random.Random(S), drawn in the same order as the cocotb bench, so both
// see the same stall pattern. The result (outputs, per-image cycle numbers, counters) goes to
// --result as JSON with the cocotb bench's keys. Progress lines go to stderr every 5 s.
//
// Exit status: 0 when every image produced an output, 2 when nothing moved on either stream
// for T cycles while outputs were still due (the result is written either way), 1 for bad
// arguments or files.

#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// Python's random.Random: MT19937 seeded by init_by_array with the seed's 32-bit words.
class PyRandom {
public:
    explicit PyRandom(uint64_t seed) {
        uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
        init_by_array(key, key[1] ? 2 : 1);
    }
    double random() {  // random.random(): 53 bits from two draws
        const uint32_t a = next() >> 5, b = next() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }

private:
    static constexpr int N = 624, M = 397;
    uint32_t mt_[N];
    int mti_ = N + 1;

    void init_genrand(uint32_t s) {
        mt_[0] = s;
        for (mti_ = 1; mti_ < N; mti_++)
            mt_[mti_] = 1812433253U * (mt_[mti_ - 1] ^ (mt_[mti_ - 1] >> 30)) + mti_;
    }
    void init_by_array(const uint32_t* key, int len) {
        init_genrand(19650218U);
        int i = 1, j = 0;
        for (int k = N > len ? N : len; k; k--) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] + j;
            if (++i >= N) { mt_[0] = mt_[N - 1]; i = 1; }
            if (++j >= len) j = 0;
        }
        for (int k = N - 1; k; k--) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - i;
            if (++i >= N) { mt_[0] = mt_[N - 1]; i = 1; }
        }
        mt_[0] = 0x80000000U;
    }
    uint32_t next() {
        static const uint32_t mag01[2] = {0x0U, 0x9908b0dfU};
        if (mti_ >= N) {
            int kk = 0;
            for (; kk < N - M; kk++) {
                const uint32_t y = (mt_[kk] & 0x80000000U) | (mt_[kk + 1] & 0x7fffffffU);
                mt_[kk] = mt_[kk + M] ^ (y >> 1) ^ mag01[y & 1U];
            }
            for (; kk < N - 1; kk++) {
                const uint32_t y = (mt_[kk] & 0x80000000U) | (mt_[kk + 1] & 0x7fffffffU);
                mt_[kk] = mt_[kk + (M - N)] ^ (y >> 1) ^ mag01[y & 1U];
            }
            const uint32_t y = (mt_[N - 1] & 0x80000000U) | (mt_[0] & 0x7fffffffU);
            mt_[N - 1] = mt_[M - 1] ^ (y >> 1) ^ mag01[y & 1U];
            mti_ = 0;
        }
        uint32_t y = mt_[mti_++];
        y ^= (y >> 11);
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= (y >> 18);
        return y;
    }
};

// Ports up to 64 bits are integers, wider ones VlWide arrays of 32-bit words.
template <typename T>
void put_bytes(T& port, const uint8_t* bytes, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | bytes[i];
    port = static_cast<T>(v);
}
template <std::size_t W>
void put_bytes(VlWide<W>& port, const uint8_t* bytes, size_t n) {
    for (size_t w = 0; w < W; ++w) {
        uint32_t v = 0;
        for (size_t b = 4; b-- > 0;) {
            const size_t i = 4 * w + b;
            v = (v << 8) | (i < n ? bytes[i] : 0);
        }
        port[w] = v;
    }
}
template <typename T>
uint64_t low_bits(const T& port) { return static_cast<uint64_t>(port); }
template <std::size_t W>
uint64_t low_bits(const VlWide<W>& port) {
    return W > 1 ? (static_cast<uint64_t>(port[1]) << 32) | port[0] : port[0];
}

struct Options {
    std::string beats_file, result_file;
    uint64_t images = 0, lanes = 0, seed = 0, timeout = 100000, reset = 4, drain = 32;
    double stall_in = 0.0, stall_out = 0.0;
};

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "harness: %s\n", message.c_str());
    std::exit(1);
}

uint64_t parse_count(const char* text, const char* name) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (!*text || *end || text[0] == '-') fail(std::string(name) + " wants a count, not " + text);
    return v;
}

double parse_probability(const char* text, const char* name) {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (!*text || *end || !(v >= 0.0 && v < 1.0))
        fail(std::string(name) + " wants a probability in [0, 1), not " + text);
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i += 2) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) fail(flag + " needs a value");
        const char* v = argv[i + 1];
        if (flag == "--beats") o.beats_file = v;
        else if (flag == "--result") o.result_file = v;
        else if (flag == "--images") o.images = parse_count(v, "--images");
        else if (flag == "--lanes") o.lanes = parse_count(v, "--lanes");
        else if (flag == "--seed") o.seed = parse_count(v, "--seed");
        else if (flag == "--timeout") o.timeout = parse_count(v, "--timeout");
        else if (flag == "--reset") o.reset = parse_count(v, "--reset");
        else if (flag == "--drain") o.drain = parse_count(v, "--drain");
        else if (flag == "--stall-in") o.stall_in = parse_probability(v, "--stall-in");
        else if (flag == "--stall-out") o.stall_out = parse_probability(v, "--stall-out");
        else fail("unknown option " + flag);
    }
    if (o.beats_file.empty() || o.result_file.empty()) fail("--beats and --result are required");
    if (o.images < 1 || o.lanes < 1 || o.timeout < 1) fail("--images, --lanes, --timeout must be positive");
    return o;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail("cannot open " + path);
    std::vector<uint8_t> data;
    uint8_t buf[1 << 16];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + got);
    std::fclose(f);
    return data;
}

void write_list(std::FILE* f, const char* key, const std::vector<uint64_t>& values) {
    std::fprintf(f, "\"%s\": [", key);
    for (size_t i = 0; i < values.size(); ++i)
        std::fprintf(f, i ? ", %llu" : "%llu", static_cast<unsigned long long>(values[i]));
    std::fprintf(f, "], ");
}

struct Run {
    std::vector<uint64_t> outputs, t_out, t_in_first, t_in_last;
    uint64_t beats_sent = 0, cycles = 0, cycles_simulated = 0, idle = 0;
    uint64_t tlast_missing = 0, extra_outputs = 0;
    bool hung = false;
    double wall_s = 0.0;
};

void write_result(const std::string& path, const Run& r) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) fail("cannot write " + tmp);
    std::fprintf(f, "{");
    write_list(f, "outputs", r.outputs);
    write_list(f, "t_out", r.t_out);
    write_list(f, "t_in_first", r.t_in_first);
    write_list(f, "t_in_last", r.t_in_last);
    std::fprintf(f,
                 "\"beats_sent\": %llu, \"cycles\": %llu, \"cycles_simulated\": %llu, "
                 "\"hung\": %s, \"idle_cycles\": %llu, \"tlast_missing\": %llu, "
                 "\"extra_outputs\": %llu, \"wall_s\": %.6f}\n",
                 static_cast<unsigned long long>(r.beats_sent),
                 static_cast<unsigned long long>(r.cycles),
                 static_cast<unsigned long long>(r.cycles_simulated), r.hung ? "true" : "false",
                 static_cast<unsigned long long>(r.idle),
                 static_cast<unsigned long long>(r.tlast_missing),
                 static_cast<unsigned long long>(r.extra_outputs), r.wall_s);
    if (std::fclose(f) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0)
        fail("cannot write " + path);
}

// One rising edge: inputs were set while clk was low.
void edge(Vtop& top) {
    top.clk = 1;
    top.eval();
    top.clk = 0;
}

Run stream(Vtop& top, const Options& o, const std::vector<uint8_t>& data) {
    const uint64_t n_beats = data.size() / o.lanes;
    const uint64_t beats_per_image = n_beats / o.images;
    const uint64_t last_of_image = beats_per_image - 1;
    PyRandom rng(o.seed);
    Run r;
    r.outputs.reserve(o.images);
    r.t_out.reserve(o.images);

    top.s_axis_tvalid = 0;
    top.s_axis_tlast = 0;
    top.m_axis_tready = 0;
    put_bytes(top.s_axis_tdata, data.data(), 0);
    top.rst = 1;
    top.clk = 0;
    top.eval();
    for (uint64_t i = 0; i < (o.reset > 2 ? o.reset : 2); ++i) {
        edge(top);
        top.eval();
    }
    top.rst = 0;

    const auto start = std::chrono::steady_clock::now();
    auto next_report = start + std::chrono::seconds(5);
    uint64_t beat = 0, cycle = 0, idle = 0, done_at = 0;
    bool presenting = false, done = false;
    while (true) {
        // Drive the values that edge `cycle` will sample.
        if (!presenting) {
            if (beat < n_beats && (o.stall_in <= 0.0 || rng.random() >= o.stall_in)) {
                put_bytes(top.s_axis_tdata, &data[beat * o.lanes], o.lanes);
                top.s_axis_tlast = beat % beats_per_image == last_of_image;
                top.s_axis_tvalid = 1;
                presenting = true;
            } else {
                top.s_axis_tvalid = 0;
            }
        }
        const bool ready = o.stall_out <= 0.0 || rng.random() >= o.stall_out || done;
        top.m_axis_tready = ready;
        top.eval();

        // What the edge samples.
        bool moved = false;
        if (presenting && top.s_axis_tready) {
            const uint64_t pos = beat % beats_per_image;
            if (pos == 0) r.t_in_first.push_back(cycle);
            if (pos == last_of_image) r.t_in_last.push_back(cycle);
            ++beat;
            presenting = false;
            moved = true;
        }
        if (ready && top.m_axis_tvalid) {
            if (!done) {
                r.outputs.push_back(low_bits(top.m_axis_tdata));
                r.t_out.push_back(cycle);
                if (!top.m_axis_tlast) ++r.tlast_missing;
                if (r.outputs.size() >= o.images) {
                    done = true;
                    done_at = cycle;
                }
            } else {
                ++r.extra_outputs;
            }
            moved = true;
        }
        edge(top);

        ++cycle;
        if (done) {
            if (cycle - done_at > o.drain) break;
            continue;
        }
        idle = moved ? 0 : idle + 1;
        if (idle >= o.timeout) {
            r.hung = true;
            break;
        }
        if ((cycle & 1023) == 0) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= next_report) {
                next_report = now + std::chrono::seconds(5);
                const double s = std::chrono::duration<double>(now - start).count();
                std::fprintf(stderr, "%zu/%llu images out, %llu cycles, %.0f cycles/s\n",
                             r.outputs.size(), static_cast<unsigned long long>(o.images),
                             static_cast<unsigned long long>(cycle), cycle / s);
            }
        }
    }
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.beats_sent = beat;
    r.cycles = done ? done_at + 1 : cycle;
    r.cycles_simulated = cycle;
    r.idle = idle;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const std::vector<uint8_t> data = read_file(o.beats_file);
    if (data.empty() || data.size() % (o.images * o.lanes))
        fail(o.beats_file + ": " + std::to_string(data.size()) + " bytes is not " +
             std::to_string(o.images) + " images of whole " + std::to_string(o.lanes) + "-byte beats");

    VerilatedContext context;
    Vtop top{&context};
    const Run r = stream(top, o, data);
    top.final();
    write_result(o.result_file, r);
    if (r.hung) {
        std::fprintf(stderr, "hung: no beat moved on either stream for %llu cycles (%zu/%llu images out)\n",
                     static_cast<unsigned long long>(o.timeout), r.outputs.size(),
                     static_cast<unsigned long long>(o.images));
        return 2;
    }
    return 0;
}
