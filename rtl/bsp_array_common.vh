// bsp_array_common.vh: what both reference arrays share, included inside their module bodies (after their
// localparams NBR, KB, NT): the memories loaded from the export's files, and the block-index helpers.
    // ---- memories (the export's files) ----
    reg [31:0] row_ptr[0:NBR];
    reg [31:0] col_idx[0:(NNZ > 0 ? NNZ - 1 : 0)];
    reg [C*VB-1:0] w_stream[0:(WLINES > 0 ? WLINES - 1 : 0)];
    reg [VB-1:0] x_mem[0:M*K-1];
    reg [AB-1:0] y_mem[0:M*N-1];
    integer q;
    initial begin
        $readmemh(ROW_PTR_FILE, row_ptr);
        if (NNZ > 0) $readmemh(COL_IDX_FILE, col_idx);
        if (WLINES > 0) $readmemh(W_STREAM_FILE, w_stream);
        $readmemh(X_FILE, x_mem);
        for (q = 0; q < M * N; q = q + 1) y_mem[q] = 0;
    end

    // ---- block-index helpers ----
    function integer tile_first_entry(input integer t);
        tile_first_entry = row_ptr[(t*C)/BR];
    endfunction
    function integer tile_end_entry(input integer t);
        integer last_row;
        begin
            last_row = ((t * C + C > N) ? N : t * C + C) - 1;
            tile_end_entry = row_ptr[last_row/BR+1];
        end
    endfunction
    // smallest kept reduction line k >= from (K when none): the compacted schedule's next line
    function integer next_kept(input [KB-1:0] bm, input integer from);
        integer c;
        begin
            next_kept = K;
            for (c = KB - 1; c >= 0; c = c - 1)
                if (bm[c] && (c + 1) * BC > from) next_kept = (c * BC > from) ? c * BC : from;
            if (next_kept > K) next_kept = K;
        end
    endfunction
