// bsp_os_array: an output-stationary, block-sparse systolic array -- the reference RTL that hwsim's
// microarchitecture model (hwsim/timing.py) is held to, cycle for cycle and bit for bit.
//
// Memories as bsp_ws_array (the export's files): BCSR index (ROW_PTR_FILE, COL_IDX_FILE), the weight stream
// (W_STREAM_FILE: per N-tile one C-lane word per kept reduction line k) and the inputs (X_FILE, one value per
// word); Y[m][n] is written to Y_FILE.
//
// Schedule (hwsim.mapping, os, zero blocks skipped): for every N-tile of C output features whose block rows
// keep something, and every M-tile of R tokens, one fold streaming the tile's compacted reduction lines.
//   prep    = index decode of the N-tile (one kept block per cycle, every fold)
//   stream  = S = kept lines: row i gets x[m0 + i][k_s], column j gets lane j of the stream word of k_s
//   latency = R + C - 2 + MULT_STAGES + ACC_STAGES until the accumulators are final
//   drain   = lines in beats of DRAIN_W lines, lines = R rows (DRAIN_COLS = 0) or C columns (DRAIN_COLS = 1);
//             a beat takes ceil(its words / DRAIN_WORDS) cycles through the result port (1 when DRAIN_WORDS = 0)
// Controller mechanisms (hwsim.timing): TILE_OVH controller cycles before every fold's decode; SWITCH_CYCLES
// dead cycles on the stream port between two folds' streams; the feeder pauses BANK_SWAP cycles after every
// BANK_DEPTH elements of a fold (0: never).
// Finding the next live N-tile reads one index pointer (row_ptr) per cycle: every empty tile passed over costs
// a cycle before the next live tile's decode; once the pointer equals the index's end, no work is left.
// Each PE has one accumulator and one result register, written as the fold's last operand passes; when the
// last PE's result is written, all result registers are copied into a shift-out chain (the first beat leaves
// straight from them) and drained while the next tile streams. OVERLAP: 0 none, 1 weights (the next fold's
// index decode runs during the current fold), 2 full (the next stream follows as soon as the shift-out chain
// and the result registers allow -- the hold terms of hwsim.timing). Edges are fixed-length chains.
//
// Ports as bsp_ws_array: pulse `start`; `done` rises after the last output write; `cycles` counts from the
// cycle after start through that write.
`timescale 1ns / 1ps
// One clocked process per array: the cycle's controller decisions are blocking temporaries computed from the
// registers at the start of the cycle (so decisions read like hwsim.timing's rules); all state is nonblocking.
/* verilator lint_off BLKSEQ */
module bsp_os_array #(
    parameter integer R = 4,
    parameter integer C = 4,
    parameter integer M = 8,
    parameter integer K = 8,
    parameter integer N = 8,
    parameter integer BR = 4,
    parameter integer BC = 4,
    parameter integer NNZ = 1,
    parameter integer WLINES = 1,
    parameter integer OVERLAP = 2,
    parameter integer MULT_STAGES = 0,
    parameter integer ACC_STAGES = 0,
    parameter integer DRAIN_COLS = 0,
    parameter integer DRAIN_W = 1,
    parameter integer DRAIN_WORDS = 0,
    parameter integer TILE_OVH = 0,
    parameter integer SWITCH_CYCLES = 0,
    parameter integer BANK_DEPTH = 0,
    parameter integer BANK_SWAP = 0,
    parameter integer VB = 8,
    parameter integer AB = 32,
    parameter ROW_PTR_FILE = "row_ptr.hex",
    parameter COL_IDX_FILE = "col_idx.hex",
    parameter W_STREAM_FILE = "w_stream.hex",
    parameter X_FILE = "x.hex",
    parameter Y_FILE = "y.hex"
) (
    input wire clk,
    input wire rst,
    input wire start,
    output reg done,
    output reg [31:0] cycles
);
    localparam integer NBR = (N + BR - 1) / BR;
    localparam integer KB = (K + BC - 1) / BC;
    localparam integer NT = (N + C - 1) / C;
    localparam integer MT = (M + R - 1) / R;
    localparam integer LINES = (DRAIN_COLS != 0) ? C : R;
    localparam integer LINE_LEN = (DRAIN_COLS != 0) ? R : C;  // results per line
    localparam integer REST = LINES % DRAIN_W;  // lines of a last, partial beat
    // cycles per full beat, and for the whole drain (each beat through a DRAIN_WORDS-word port)
    localparam integer BEAT_CYC = DRAIN_WORDS > 0 ? (DRAIN_W * LINE_LEN + DRAIN_WORDS - 1) / DRAIN_WORDS : 1;
    localparam integer DC = (LINES / DRAIN_W) * BEAT_CYC
                            + (REST == 0 ? 0 : (DRAIN_WORDS > 0 ? (REST * LINE_LEN + DRAIN_WORDS - 1) / DRAIN_WORDS
                                                                : 1));
    localparam integer MS = MULT_STAGES > 0 ? MULT_STAGES : 1;
    localparam integer AS = ACC_STAGES > 0 ? ACC_STAGES : 1;

    `include "bsp_array_common.vh"

    function integer block_width(input integer c);
        block_width = (c * BC + BC > K) ? K - c * BC : BC;
    endfunction
    // stream-port cycles of n elements: bank-swap pauses between the banks' worth of elements
    function integer stream_cycles(input integer n);
        stream_cycles = n + ((BANK_DEPTH > 0 && n > 0) ? BANK_SWAP * ((n - 1) / BANK_DEPTH) : 0);
    endfunction

    // ---- controller ----
    reg running;
    integer folds_prepped, folds_started, folds_done, copies;
    reg prep_busy;
    integer prep_idx, dec_end, nk_acc, os_tile, os_u, wnext, tile_wbase, ovh_left;
    reg [KB-1:0] bm0, bm1;
    // per fold (slot = fold % 4): tile origin, live rows/cols, stream length, stream base, predicted copy cycle
    integer fi_n0[0:3];
    integer fi_m0[0:3];
    integer fi_rows[0:3];
    integer fi_cols[0:3];
    integer fi_nk[0:3];
    integer fi_wbase[0:3];
    integer fi_copy[0:3];
    reg stream_busy;
    integer s_idx, s_k, s_fold, pause_left, idle_cnt;
    integer copy_last;  // predicted copy cycle of the last fold started

    // ---- datapath (index i*C + j) ----
    reg signed [VB-1:0] a_reg[0:R*C-1];
    reg a_v[0:R*C-1];
    reg a_first[0:R*C-1];
    reg a_last[0:R*C-1];
    reg signed [VB-1:0] b_reg[0:R*C-1];
    reg signed [AB-1:0] pp[0:R*C*MS-1];
    reg pp_v[0:R*C*MS-1];
    reg pp_first[0:R*C*MS-1];
    reg pp_last[0:R*C*MS-1];
    reg signed [AB-1:0] acc[0:R*C-1];
    reg signed [AB-1:0] res[0:R*C-1];
    reg signed [AB-1:0] chain[0:R*C-1];
    reg signed [VB-1:0] skew_a[0:R*R-1];
    reg skew_v[0:R*R-1];
    reg skew_first[0:R*R-1];
    reg skew_last[0:R*R-1];
    reg signed [VB-1:0] skew_b[0:C*C-1];
    reg copy_pending, drain_busy;
    integer drain_beat, drain_slot;
    // drain output pipeline (ACC_STAGES): beat, fold slot, values
    reg ap_v[0:AS-1];
    integer ap_beat[0:AS-1];
    integer ap_slot[0:AS-1];
    reg signed [AB-1:0] ap_vals[0:AS*R*C-1];
    reg y_written;

    // ---- per-cycle temporaries ----
    integer i, j, d, t2, e, c, k_now, bank, s_len, beat, out_slot, line, now;
    /* verilator lint_off UNUSEDSIGNAL */
    integer slot;  // fold % 4: only the low bits index the per-fold slots
    /* verilator lint_on UNUSEDSIGNAL */
    reg have_work, stream_go, prep_go, prev_started, feed_v, feed_first, feed_last, all_done, hazard_ok, in_ovh;
    reg fold_go, scanning;
    integer sub;
    reg out_v;
    reg [KB-1:0] one_hot, bm_cur;
    reg [C*VB-1:0] word;
    reg signed [VB-1:0] feed_a[0:R-1];
    reg signed [VB-1:0] feed_b[0:C-1];
    reg signed [VB-1:0] a_in, b_in;
    reg v_in, first_in, last_in, p_v, p_first, p_last;
    reg signed [AB-1:0] p_now, p_val, beat_vals[0:R*C-1], out_vals[0:R*C-1];

    always @(posedge clk) begin
        if (rst) begin
            running <= 0;
            done <= 0;
            cycles <= 0;
            folds_prepped <= 0;
            folds_started <= 0;
            folds_done <= 0;
            copies <= 0;
            prep_busy <= 0;
            os_tile <= -1;
            os_u <= MT;
            wnext <= 0;
            stream_busy <= 0;
            copy_pending <= 0;
            drain_busy <= 0;
            scanning <= 0;
            pause_left <= 0;
            idle_cnt <= 0;
            ovh_left <= 0;
            y_written <= 0;
            for (q = 0; q < R * C; q = q + 1) begin
                a_reg[q] <= 0;
                a_v[q] <= 0;
                a_first[q] <= 0;
                a_last[q] <= 0;
                b_reg[q] <= 0;
                acc[q] <= 0;
                res[q] <= 0;
            end
            for (q = 0; q < R * C * MS; q = q + 1) pp_v[q] <= 0;
            for (q = 0; q < R * R; q = q + 1) skew_v[q] <= 0;
            for (q = 0; q < AS; q = q + 1) ap_v[q] <= 0;
        end else begin
            if (start && !running && !done) begin
                running <= 1;
                cycles <= 0;
            end
            if (done && !y_written) begin
                $writememh(Y_FILE, y_mem);
                y_written <= 1;
            end
            now = cycles;

            // ================= controller decisions =================
            // work is left while the index pointer of the next tile is short of the index's end (one read)
            have_work = (os_u < MT) || (os_tile + 1 < NT ? tile_first_entry(os_tile + 1) < NNZ : 1'b0);
            all_done = !have_work && !prep_busy && folds_done == folds_prepped;
            slot = folds_started % 4;
            s_len = fi_nk[slot];
            // full overlap: the shift-out chain has drained the previous tile when this one is copied in, and
            // this fold's first result register (PE 0,0) is written no earlier than the previous copy
            hazard_ok = folds_started == 0 || (now + stream_cycles(s_len) - 1 + MULT_STAGES >= copy_last
                        && now + stream_cycles(s_len) + R + C - 2 + MULT_STAGES >= copy_last + DC);
            stream_go = running && !all_done && !stream_busy && folds_prepped > folds_started
                        && (OVERLAP == 2 ? hazard_ok : folds_done >= folds_started)
                        && (folds_started == 0 || idle_cnt >= SWITCH_CYCLES);
            prev_started = folds_started >= folds_prepped || (stream_go && folds_started + 1 == folds_prepped);
            prep_go = running && !all_done && !prep_busy && have_work
                      && (folds_prepped == 0 || (OVERLAP == 0 ? folds_done >= folds_prepped : prev_started));
            if (running && all_done) begin
                running <= 0;
                done <= 1;
            end else if (running) begin
                cycles <= cycles + 1;
            end

            // ================= prep engine: decode the N-tile's index into this fold's bank =================
            if (prep_go || prep_busy) begin
                bank = folds_prepped % 2;
                slot = folds_prepped % 4;
                bm_cur = (bank != 0) ? bm1 : bm0;
                in_ovh = 0;
                fold_go = prep_go || scanning;
                if (fold_go && os_u >= MT && tile_end_entry(os_tile + 1) == tile_first_entry(os_tile + 1)) begin
                    // an empty N-tile: one index-pointer read passes over it
                    os_tile <= os_tile + 1;
                    scanning <= 1;
                    in_ovh = 1;
                end else if (fold_go) begin
                    scanning <= 0;
                    if (os_u < MT) begin
                        t2 = os_tile;
                        fi_m0[slot] <= os_u * R;
                        fi_rows[slot] <= (os_u * R + R > M) ? M - os_u * R : R;
                        os_u <= os_u + 1;
                    end else begin
                        t2 = os_tile + 1;
                        os_tile <= t2;
                        fi_m0[slot] <= 0;
                        fi_rows[slot] <= (R > M) ? M : R;
                        os_u <= 1;
                    end
                    fi_n0[slot] <= t2 * C;
                    fi_cols[slot] <= (t2 * C + C > N) ? N - t2 * C : C;
                    e = tile_first_entry(t2);
                    dec_end <= tile_end_entry(t2);
                    c = col_idx[e];
                    one_hot = 0;
                    one_hot[c] = 1'b1;
                    bm_cur = one_hot;
                    nk_acc = block_width(c);
                    if (os_u >= MT) tile_wbase <= wnext;
                    if (TILE_OVH > 0) begin  // controller cycles first; the decode then starts at entry e
                        in_ovh = 1;
                        bm_cur = 0;
                        nk_acc = 0;
                        prep_idx <= e;
                        ovh_left <= TILE_OVH - 1;
                    end
                end else if (ovh_left > 0) begin
                    in_ovh = 1;
                    ovh_left <= ovh_left - 1;
                end else begin
                    e = prep_idx;
                    c = col_idx[e];
                    one_hot = 0;
                    one_hot[c] = 1'b1;
                    if (!bm_cur[c]) nk_acc = nk_acc + block_width(c);
                    bm_cur = bm_cur | one_hot;
                    t2 = os_tile;
                end
                if (bank != 0) bm1 <= bm_cur;
                else bm0 <= bm_cur;
                if (in_ovh) begin
                    prep_busy <= 1;
                end else if (e + 1 == (fold_go ? tile_end_entry(t2) : dec_end)) begin
                    prep_busy <= 0;
                    folds_prepped <= folds_prepped + 1;
                    fi_nk[slot] <= nk_acc;
                    if (fold_go ? os_u >= MT : os_u == 1) begin  // the tile's first fold: its lines start here
                        fi_wbase[slot] <= fold_go ? wnext : tile_wbase;
                        wnext <= (fold_go ? wnext : tile_wbase) + nk_acc;
                    end else begin
                        fi_wbase[slot] <= tile_wbase;
                    end
                end else begin
                    prep_busy <= 1;
                    prep_idx <= e + 1;
                end
            end

            // ================= stream engine (pausing while the input bank swaps) =================
            feed_v = stream_go || (stream_busy && pause_left == 0);
            if (stream_busy && pause_left > 0) pause_left <= pause_left - 1;
            s_len = stream_go ? fi_nk[folds_started%4] : fi_nk[s_fold%4];
            slot = stream_go ? folds_started % 4 : s_fold % 4;
            bank = stream_go ? folds_started % 2 : s_fold % 2;
            bm_cur = (bank != 0) ? bm1 : bm0;
            if (stream_go) begin
                k_now = next_kept(bm_cur, 0);
                s_fold <= folds_started;
                folds_started <= folds_started + 1;
                copy_last <= now + stream_cycles(fi_nk[folds_started%4]) + R + C - 2 + MULT_STAGES;
                fi_copy[folds_started%4] <= now + stream_cycles(fi_nk[folds_started%4]) + R + C - 2 + MULT_STAGES;
            end else begin
                k_now = s_k;
            end
            feed_first = feed_v && (stream_go || s_idx == 0);
            if (feed_v) begin
                d = stream_go ? 0 : s_idx;
                feed_last = d == s_len - 1;
                stream_busy <= d + 1 < s_len;
                s_idx <= d + 1;
                if (BANK_DEPTH > 0 && (d + 1) % BANK_DEPTH == 0 && d + 1 < s_len) pause_left <= BANK_SWAP;
                s_k <= next_kept(bm_cur, k_now + 1);
                word = w_stream[fi_wbase[slot]+d];
                for (i = 0; i < R; i = i + 1)
                    feed_a[i] = (i < fi_rows[slot]) ? $signed(x_mem[(fi_m0[slot]+i)*K+k_now]) : 0;
                for (j = 0; j < C; j = j + 1) feed_b[j] = $signed(word[j*VB+:VB]);
            end else begin
                feed_last = 0;
                for (i = 0; i < R; i = i + 1) feed_a[i] = 0;
                for (j = 0; j < C; j = j + 1) feed_b[j] = 0;
            end
            // cycles since the last stream's final element (the fold-switch bubble)
            if (feed_last) idle_cnt <= 0;
            else if (idle_cnt < SWITCH_CYCLES) idle_cnt <= idle_cnt + 1;

            // ================= PE grid =================
            for (i = 0; i < R; i = i + 1) begin
                for (j = 0; j < C; j = j + 1) begin
                    if (j == 0) begin
                        a_in = (i == 0) ? feed_a[0] : skew_a[i*R+i-1];
                        v_in = (i == 0) ? feed_v : skew_v[i*R+i-1];
                        first_in = (i == 0) ? feed_first : skew_first[i*R+i-1];
                        last_in = (i == 0) ? feed_last : skew_last[i*R+i-1];
                    end else begin
                        a_in = a_reg[i*C+j-1];
                        v_in = a_v[i*C+j-1];
                        first_in = a_first[i*C+j-1];
                        last_in = a_last[i*C+j-1];
                    end
                    if (i == 0) b_in = (j == 0) ? feed_b[0] : skew_b[j*C+j-1];
                    else b_in = b_reg[(i-1)*C+j];
                    a_reg[i*C+j] <= a_in;
                    a_v[i*C+j] <= v_in;
                    a_first[i*C+j] <= first_in;
                    a_last[i*C+j] <= last_in;
                    b_reg[i*C+j] <= b_in;
                    p_now = a_in * b_in;
                    if (MULT_STAGES == 0) begin
                        p_val = p_now;
                        p_v = v_in;
                        p_first = first_in;
                        p_last = last_in;
                    end else begin
                        p_val = pp[(i*C+j)*MS+MS-1];
                        p_v = pp_v[(i*C+j)*MS+MS-1];
                        p_first = pp_first[(i*C+j)*MS+MS-1];
                        p_last = pp_last[(i*C+j)*MS+MS-1];
                        pp[(i*C+j)*MS] <= p_now;
                        pp_v[(i*C+j)*MS] <= v_in;
                        pp_first[(i*C+j)*MS] <= first_in;
                        pp_last[(i*C+j)*MS] <= last_in;
                        for (d = 1; d < MS; d = d + 1) begin
                            pp[(i*C+j)*MS+d] <= pp[(i*C+j)*MS+d-1];
                            pp_v[(i*C+j)*MS+d] <= pp_v[(i*C+j)*MS+d-1];
                            pp_first[(i*C+j)*MS+d] <= pp_first[(i*C+j)*MS+d-1];
                            pp_last[(i*C+j)*MS+d] <= pp_last[(i*C+j)*MS+d-1];
                        end
                    end
                    if (p_v) begin
                        acc[i*C+j] <= p_first ? p_val : acc[i*C+j] + p_val;
                        if (p_last) res[i*C+j] <= p_first ? p_val : acc[i*C+j] + p_val;
                        if (p_last && i == R - 1 && j == C - 1) copy_pending <= 1;
                    end
                end
            end
            for (i = 1; i < R; i = i + 1) begin
                skew_a[i*R] <= feed_a[i];
                skew_v[i*R] <= feed_v;
                skew_first[i*R] <= feed_first;
                skew_last[i*R] <= feed_last;
                for (d = 1; d < i; d = d + 1) begin
                    skew_a[i*R+d] <= skew_a[i*R+d-1];
                    skew_v[i*R+d] <= skew_v[i*R+d-1];
                    skew_first[i*R+d] <= skew_first[i*R+d-1];
                    skew_last[i*R+d] <= skew_last[i*R+d-1];
                end
            end
            for (j = 1; j < C; j = j + 1) begin
                skew_b[j*C] <= feed_b[j];
                for (d = 1; d < j; d = d + 1) skew_b[j*C+d] <= skew_b[j*C+d-1];
            end

            // ================= copy into the shift-out chain, drain =================
            out_v = 0;
            beat = 0;
            out_slot = 0;
            if (copy_pending) begin  // the last result register was written last cycle
                copy_pending <= 0;
                out_slot = copies % 4;
                if (now != fi_copy[out_slot])
                    $display("BSP-RTL-ERROR: fold %0d copied at cycle %0d, controller expected %0d", copies, now,
                             fi_copy[out_slot]);
                copies <= copies + 1;
                for (q = 0; q < R * C; q = q + 1) begin
                    chain[q] <= res[q];
                    beat_vals[q] = res[q];
                end
                out_v = 1;
                beat = 0;
                drain_busy <= DC > 1;
                drain_beat <= 1;
                drain_slot <= out_slot;
            end else if (drain_busy) begin
                for (q = 0; q < R * C; q = q + 1) beat_vals[q] = chain[q];
                out_v = 1;
                beat = drain_beat;
                out_slot = drain_slot;
                drain_busy <= drain_beat + 1 < DC;
                drain_beat <= drain_beat + 1;
            end
            // accumulator/output pipeline registers, then write the beat's lines into Y
            if (ACC_STAGES == 0) begin
                for (q = 0; q < R * C; q = q + 1) out_vals[q] = beat_vals[q];
            end else begin
                ap_v[0] <= out_v;
                ap_beat[0] <= beat;
                ap_slot[0] <= out_slot;
                for (q = 0; q < R * C; q = q + 1) ap_vals[q] <= beat_vals[q];
                for (d = 1; d < AS; d = d + 1) begin
                    ap_v[d] <= ap_v[d-1];
                    ap_beat[d] <= ap_beat[d-1];
                    ap_slot[d] <= ap_slot[d-1];
                    for (q = 0; q < R * C; q = q + 1) ap_vals[d*R*C+q] <= ap_vals[(d-1)*R*C+q];
                end
                out_v = ap_v[AS-1];
                beat = ap_beat[AS-1];
                out_slot = ap_slot[AS-1];
                for (q = 0; q < R * C; q = q + 1) out_vals[q] = ap_vals[(AS-1)*R*C+q];
            end
            if (out_v) begin
                // `beat` counts drain cycles: cycle `sub` of beat `beat / BEAT_CYC` writes the beat's words
                // [sub * DRAIN_WORDS, (sub + 1) * DRAIN_WORDS), line by line (all of them without a port width)
                sub = beat % BEAT_CYC;
                for (line = 0; line < LINES; line = line + 1) begin  // the lines of this beat
                    if (line / DRAIN_W != beat / BEAT_CYC) begin
                        // another beat's line
                    end else if (DRAIN_COLS != 0) begin
                        for (i = 0; i < R; i = i + 1)
                            if (i < fi_rows[out_slot] && line < fi_cols[out_slot]
                                && (DRAIN_WORDS == 0 || ((line % DRAIN_W) * LINE_LEN + i) / DRAIN_WORDS == sub))
                                y_mem[(fi_m0[out_slot]+i)*N+fi_n0[out_slot]+line] <= out_vals[i*C+line];
                    end else begin
                        for (j = 0; j < C; j = j + 1)
                            if (line < fi_rows[out_slot] && j < fi_cols[out_slot]
                                && (DRAIN_WORDS == 0 || ((line % DRAIN_W) * LINE_LEN + j) / DRAIN_WORDS == sub))
                                y_mem[(fi_m0[out_slot]+line)*N+fi_n0[out_slot]+j] <= out_vals[line*C+j];
                    end
                end
                if (beat == DC - 1) folds_done <= folds_done + 1;
            end
        end
    end
endmodule
