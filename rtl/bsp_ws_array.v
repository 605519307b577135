// bsp_ws_array: a weight-stationary, block-sparse systolic array -- the reference RTL that hwsim's
// microarchitecture model (hwsim/timing.py) is held to, cycle for cycle and bit for bit.
//
// It reads `bsp export` memories directly ($readmemh): the BCSR block index (ROW_PTR_FILE, COL_IDX_FILE:
// one 32-bit word per entry), the array-native weight stream (W_STREAM_FILE: per N-tile, one word per kept
// reduction line k, C lanes of VB bits, lane j = output feature n0 + j in bits [j*VB +: VB]) and the inputs
// (X_FILE: A[m][k], one VB-bit value per word, row-major). It writes Y[m][n] (AB bits per word) to Y_FILE.
//
// Schedule (hwsim.mapping, ws, zero blocks skipped): for every N-tile of C output features whose block
// rows keep something, one pass over the compacted reduction lines k (the union of the kept block columns),
// R lines per fold, each fold streaming all M rows of A. Per fold:
//   prep   = index decode (one kept block per cycle, first fold of a pass only) + R preload cycles (one
//            weight row per cycle into the PEs' inactive weight bank, through a column-skewed load chain)
//   stream = M cycles (one input vector per cycle into the row-skewed feeder; rows gather A[m][k_i])
//   latency= R + C - 2 + MULT_STAGES + ACC_STAGES (skew, partial-sum chain, column de-skew, pipelines)
// Controller mechanisms (hwsim.timing): TILE_OVH controller cycles before a pass's decode (tile_overhead_cycles);
// SWITCH_CYCLES dead cycles on the stream port between two folds' streams (fold_switch_cycles); the feeder
// pauses BANK_SWAP cycles after every BANK_DEPTH elements of a fold (stream_bank_depth/_swap_cycles; 0: never).
// Finding the next live N-tile reads one index pointer (row_ptr) per cycle: every empty tile passed over costs
// a cycle before the next live tile's decode; once the pointer equals the index's end, no work is left.
// OVERLAP selects hwsim's fold_overlap: 0 none, 1 weights, 2 full. The edges are fixed-length chains
// (edge_skew: full): partial tiles are padded with zero weights. Every fold's operands carry its weight
// bank, so with full overlap PEs switch tiles as the wavefront passes.
//
// Ports: pulse `start` for one cycle after reset; cycle 0 is the next cycle; `done` rises when the last
// output has been written, and `cycles` then holds the cycles from cycle 0 through that write.
`timescale 1ns / 1ps
// One clocked process per array: the cycle's controller decisions are blocking temporaries computed from the
// registers at the start of the cycle (so decisions read like hwsim.timing's rules); all state is nonblocking.
/* verilator lint_off BLKSEQ */
module bsp_ws_array #(
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
    localparam integer NBR = (N + BR - 1) / BR;  // block rows
    localparam integer KB = (K + BC - 1) / BC;  // block columns
    localparam integer NT = (N + C - 1) / C;  // N-tiles
    localparam integer OUT_DELAY = R + C - 2 + MULT_STAGES;  // feeder cycle -> de-skewed bottom row
    localparam integer MS = MULT_STAGES > 0 ? MULT_STAGES : 1;
    localparam integer AS = ACC_STAGES > 0 ? ACC_STAGES : 1;
    localparam integer MD_DELAY = OUT_DELAY + ACC_STAGES;  // feeder cycle -> the output write
    localparam integer MDL = MD_DELAY > 0 ? MD_DELAY : 1;

    `include "bsp_array_common.vh"

    // ---- controller state ----
    reg running;
    integer folds_prepped, folds_started, folds_done;
    // prep engine: decode (phase 0) then load (phase 1)
    reg prep_busy, pass_open, kinit;
    reg [1:0] prep_phase;  // 0 decode, 1 load, 2 tile overhead, 3 scan past empty tiles
    integer prep_idx, dec_end, tile_next, kcur, wptr, ovh_left;
    reg [KB-1:0] bitmap;
    integer f_n0[0:1];
    integer f_cols[0:1];
    integer ksel[0:2*R-1];  // reduction line of each row, per weight bank
    // stream engine
    reg stream_busy;
    integer s_idx, s_bank, pause_left, idle_cnt;

    // ---- datapath registers (index i*C + j) ----
    reg signed [VB-1:0] w0[0:R*C-1];
    reg signed [VB-1:0] w1[0:R*C-1];
    reg signed [VB-1:0] a_reg[0:R*C-1];
    reg a_bank[0:R*C-1];
    reg [C*VB-1:0] ld_word[0:R*C-1];
    reg ld_v[0:R*C-1];
    reg ld_b[0:R*C-1];
    reg signed [AB-1:0] prod_pipe[0:R*C*MS-1];
    reg signed [AB-1:0] psum[0:R*C-1];
    reg signed [VB-1:0] skew_a[0:R*R-1];  // feeder skew: row i delayed i cycles
    reg skew_b[0:R*R-1];
    reg signed [AB-1:0] deskew[0:C*C-1];  // column j delayed C-1-j cycles
    // output metadata, delayed from the feeder to the output write (skew + ACC_STAGES)
    reg md_v[0:MDL-1];
    reg md_last[0:MDL-1];
    integer md_m[0:MDL-1];
    integer md_n0[0:MDL-1];
    integer md_cols[0:MDL-1];
    reg signed [AB-1:0] acc_data[0:AS*C-1];
    reg y_written;

    // ---- per-cycle temporaries (blocking) ----
    integer i, j, d, t2, k_here, k_after, e, s_now, bank, n_live, ld_row;
    reg [KB-1:0] one_hot;
    reg have_work, stream_go, prep_go, prev_started, feed_v, final_v, final_last, all_done, pass_go;
    reg [C*VB-1:0] word;
    reg signed [VB-1:0] feed_a[0:R-1];
    reg signed [VB-1:0] a_in, w_here;
    reg b_in;
    reg signed [AB-1:0] prod_now, prod_out, psum_in, bottom[0:C-1], aligned[0:C-1], final_data[0:C-1];
    reg [C*VB-1:0] ld_in_word;
    reg ld_in_v, ld_in_b;
    integer final_m, final_n0, final_cols;
    reg meta_last;

    always @(posedge clk) begin
        if (rst) begin
            running <= 0;
            done <= 0;
            cycles <= 0;
            folds_prepped <= 0;
            folds_started <= 0;
            folds_done <= 0;
            prep_busy <= 0;
            pass_open <= 0;
            tile_next <= 0;
            wptr <= 0;
            stream_busy <= 0;
            pause_left <= 0;
            idle_cnt <= 0;
            ovh_left <= 0;
            y_written <= 0;
            for (q = 0; q < R * C; q = q + 1) begin
                w0[q] <= 0;
                w1[q] <= 0;
                a_reg[q] <= 0;
                a_bank[q] <= 0;
                ld_v[q] <= 0;
                psum[q] <= 0;
            end
            for (q = 0; q < R * C * MS; q = q + 1) prod_pipe[q] <= 0;
            for (q = 0; q < R * R; q = q + 1) begin
                skew_a[q] <= 0;
                skew_b[q] <= 0;
            end
            for (q = 0; q < MDL; q = q + 1) md_v[q] <= 0;
        end else begin
            if (start && !running && !done) begin
                running <= 1;
                cycles <= 0;
            end
            if (done && !y_written) begin
                $writememh(Y_FILE, y_mem);
                y_written <= 1;
            end

            // ================= controller decisions for this cycle =================
            // work is left while the index pointer of the next tile is short of the index's end (one read)
            have_work = pass_open || (tile_next < NT ? tile_first_entry(tile_next) < NNZ : 1'b0);
            all_done = !have_work && !prep_busy && folds_done == folds_prepped;
            stream_go = running && !all_done && !stream_busy && folds_prepped > folds_started
                        && (OVERLAP == 2 || folds_done >= folds_started)
                        && (folds_started == 0 || idle_cnt >= SWITCH_CYCLES);
            // the previous fold has started streaming (its weights are in; the shadow bank is free)
            prev_started = folds_started >= folds_prepped || (stream_go && folds_started + 1 == folds_prepped);
            prep_go = running && !all_done && !prep_busy && have_work
                      && (folds_prepped == 0 || (OVERLAP == 0 ? folds_done >= folds_prepped : prev_started));

            if (running && all_done) begin
                running <= 0;  // cycles stays at the count through the last write
                done <= 1;
            end else if (running) begin
                cycles <= cycles + 1;
            end

            // ================= prep engine: decode, then load R weight rows =================
            ld_in_v = 0;
            ld_row = -1;
            ld_in_b = 0;
            ld_in_word = 0;
            if (prep_go || prep_busy) begin
                bank = folds_prepped % 2;
                pass_go = (prep_go && !pass_open) || (prep_busy && prep_phase == 3);
                if (pass_go && tile_end_entry(tile_next) == tile_first_entry(tile_next)) begin
                    // an empty N-tile: one index-pointer read passes over it
                    tile_next <= tile_next + 1;
                    prep_phase <= 3;
                    prep_busy <= 1;
                end else if (pass_go) begin
                    // a new pass: decode the N-tile's index entries
                    t2 = tile_next;
                    tile_next <= t2 + 1;
                    f_n0[bank] <= t2 * C;
                    f_cols[bank] <= (t2 * C + C > N) ? N - t2 * C : C;
                    e = tile_first_entry(t2);
                    dec_end <= tile_end_entry(t2);
                    one_hot = 0;
                    one_hot[col_idx[e]] = 1'b1;
                    bitmap <= one_hot;
                    if (TILE_OVH > 0) begin  // controller cycles first; the decode then starts at entry e
                        bitmap <= 0;
                        prep_phase <= 2;
                        prep_idx <= e;
                        ovh_left <= TILE_OVH - 1;
                    end else if (e + 1 == tile_end_entry(t2)) begin
                        prep_phase <= 1;
                        prep_idx <= 0;
                        kinit <= 1;
                    end else begin
                        prep_phase <= 0;
                        prep_idx <= e + 1;
                    end
                    prep_busy <= 1;
                end else if (prep_busy && prep_phase == 2 && ovh_left > 0) begin
                    ovh_left <= ovh_left - 1;
                end else if (prep_busy && prep_phase != 1) begin  // decode one entry (also right after the overhead)
                    one_hot = 0;
                    one_hot[col_idx[prep_idx]] = 1'b1;
                    bitmap <= bitmap | one_hot;
                    if (prep_idx + 1 == dec_end) begin
                        prep_phase <= 1;
                        prep_idx <= 0;
                        kinit <= 1;
                    end else begin
                        prep_phase <= 0;
                        prep_idx <= prep_idx + 1;
                    end
                end else begin  // load one weight row (prep_go with the pass open starts here)
                    i = prep_go ? 0 : prep_idx;
                    if (prep_go) begin
                        f_n0[bank] <= f_n0[1-bank];
                        f_cols[bank] <= f_cols[1-bank];
                    end
                    k_here = kinit ? next_kept(bitmap, 0) : kcur;
                    if (k_here < K) begin
                        word = w_stream[wptr];
                        wptr <= wptr + 1;
                        k_after = next_kept(bitmap, k_here + 1);
                    end else begin
                        word = 0;
                        k_after = K;
                    end
                    ksel[bank*R+i] <= (k_here < K) ? k_here : 0;
                    kcur <= k_after;
                    kinit <= 0;
                    ld_in_v = 1;
                    ld_row = i;
                    ld_in_b = bank[0];
                    ld_in_word = word;
                    if (i == R - 1) begin
                        prep_busy <= 0;
                        folds_prepped <= folds_prepped + 1;
                        pass_open <= k_after < K;
                    end else begin
                        prep_busy <= 1;
                        prep_phase <= 1;
                        prep_idx <= i + 1;
                    end
                end
            end

            // ================= stream engine: M input vectors, pausing while the input bank swaps =================
            feed_v = stream_go || (stream_busy && pause_left == 0);
            if (stream_busy && pause_left > 0) pause_left <= pause_left - 1;
            s_now = stream_go ? 0 : s_idx;
            bank = stream_go ? folds_started % 2 : s_bank;
            if (stream_go) begin
                s_bank <= folds_started % 2;
                folds_started <= folds_started + 1;
            end
            if (feed_v) begin
                stream_busy <= s_now + 1 < M;
                s_idx <= s_now + 1;
                if (BANK_DEPTH > 0 && (s_now + 1) % BANK_DEPTH == 0 && s_now + 1 < M) pause_left <= BANK_SWAP;
            end
            // cycles since the last stream's final element (the fold-switch bubble)
            if (feed_v && s_now == M - 1) idle_cnt <= 0;
            else if (idle_cnt < SWITCH_CYCLES) idle_cnt <= idle_cnt + 1;
            for (i = 0; i < R; i = i + 1)
                feed_a[i] = feed_v ? $signed(x_mem[s_now*K+ksel[bank*R+i]]) : 0;
            meta_last = feed_v && s_now == M - 1;

            // ================= datapath =================
            // load chain: row i's word enters column 0 when the loader writes row i, then moves right
            for (i = 0; i < R; i = i + 1) begin
                for (j = 0; j < C; j = j + 1) begin
                    // the weight arriving at PE(i, j) this cycle
                    if (j == 0) begin
                        if (ld_in_v && ld_row == i) begin
                            if (ld_in_b) w1[i*C] <= $signed(ld_in_word[0+:VB]);
                            else w0[i*C] <= $signed(ld_in_word[0+:VB]);
                        end
                        ld_v[i*C] <= ld_in_v && ld_row == i;
                        ld_b[i*C] <= ld_in_b;
                        ld_word[i*C] <= ld_in_word;
                    end else begin
                        if (ld_v[i*C+j-1]) begin
                            if (ld_b[i*C+j-1]) w1[i*C+j] <= $signed(ld_word[i*C+j-1][j*VB+:VB]);
                            else w0[i*C+j] <= $signed(ld_word[i*C+j-1][j*VB+:VB]);
                        end
                        ld_v[i*C+j] <= ld_v[i*C+j-1];
                        ld_b[i*C+j] <= ld_b[i*C+j-1];
                        ld_word[i*C+j] <= ld_word[i*C+j-1];
                    end
                    // the activation arriving at PE(i, j) this cycle (feeder skew for column 0)
                    if (j == 0) begin
                        a_in = (i == 0) ? feed_a[0] : skew_a[i*R+i-1];
                        b_in = (i == 0) ? bank[0] : skew_b[i*R+i-1];
                    end else begin
                        a_in = a_reg[i*C+j-1];
                        b_in = a_bank[i*C+j-1];
                    end
                    a_reg[i*C+j] <= a_in;
                    a_bank[i*C+j] <= b_in;
                    w_here = b_in ? w1[i*C+j] : w0[i*C+j];
                    prod_now = a_in * w_here;
                    if (MULT_STAGES == 0) begin
                        prod_out = prod_now;
                    end else begin
                        prod_out = prod_pipe[(i*C+j)*MS+MS-1];
                        prod_pipe[(i*C+j)*MS] <= prod_now;
                        for (d = 1; d < MS; d = d + 1)
                            prod_pipe[(i*C+j)*MS+d] <= prod_pipe[(i*C+j)*MS+d-1];
                    end
                    psum_in = (i == 0) ? 0 : psum[(i-1)*C+j];
                    psum[i*C+j] <= psum_in + prod_out;
                    if (i == R - 1) bottom[j] = psum_in + prod_out;
                end
            end
            // feeder skew registers
            for (i = 1; i < R; i = i + 1) begin
                skew_a[i*R] <= feed_a[i];
                skew_b[i*R] <= bank[0];
                for (d = 1; d < i; d = d + 1) begin
                    skew_a[i*R+d] <= skew_a[i*R+d-1];
                    skew_b[i*R+d] <= skew_b[i*R+d-1];
                end
            end
            // column de-skew: column j waits C-1-j cycles so a whole output row leaves at once
            for (j = 0; j < C; j = j + 1) begin
                if (j == C - 1) aligned[j] = bottom[j];
                else aligned[j] = deskew[j*C+C-2-j];
                deskew[j*C] <= bottom[j];
                for (d = 1; d < C; d = d + 1) deskew[j*C+d] <= deskew[j*C+d-1];
            end
            // metadata of the element the output row belongs to: delayed with the skew, then the ACC_STAGES
            n_live = f_cols[bank];
            md_v[0] <= feed_v;
            md_last[0] <= meta_last;
            md_m[0] <= s_now;
            md_n0[0] <= f_n0[bank];
            md_cols[0] <= n_live;
            for (d = 1; d < MDL; d = d + 1) begin
                md_v[d] <= md_v[d-1];
                md_last[d] <= md_last[d-1];
                md_m[d] <= md_m[d-1];
                md_n0[d] <= md_n0[d-1];
                md_cols[d] <= md_cols[d-1];
            end
            final_v = MD_DELAY == 0 ? feed_v : md_v[MDL-1];
            final_last = MD_DELAY == 0 ? meta_last : md_last[MDL-1];
            final_m = MD_DELAY == 0 ? s_now : md_m[MDL-1];
            final_n0 = MD_DELAY == 0 ? f_n0[bank] : md_n0[MDL-1];
            final_cols = MD_DELAY == 0 ? n_live : md_cols[MDL-1];
            // accumulator pipeline (ACC_STAGES registers), then the read-modify-write into Y
            for (j = 0; j < C; j = j + 1) begin
                final_data[j] = ACC_STAGES == 0 ? aligned[j] : acc_data[(AS-1)*C+j];
                acc_data[j] <= aligned[j];
                for (d = 1; d < AS; d = d + 1) acc_data[d*C+j] <= acc_data[(d-1)*C+j];
            end
            if (final_v) begin
                for (j = 0; j < C; j = j + 1)
                    if (j < final_cols)
                        y_mem[final_m*N+final_n0+j] <= y_mem[final_m*N+final_n0+j] + final_data[j];
                if (final_last) folds_done <= folds_done + 1;
            end
        end
    end
endmodule
