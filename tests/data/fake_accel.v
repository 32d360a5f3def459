// Stand-in accelerator for the simulation runner's tests.
//
// Takes images of BEATS beats of LANES uint8 lanes each and, per image, outputs
//     class = (sum of all bytes + params[0]) mod 10
// DELAY + 1 cycles after the image's last beat was accepted (DELAY register stages, then a
// FIFO of DEPTH entries). At most DEPTH images are in flight between the last input beat and
// the output handshake; beyond that s_axis_tready falls, so output stalls push back onto the
// input. s_axis_tready also depends combinationally on m_axis_tready (a slot freed by an
// output handshake can be reused in the same cycle).
//
// params[] comes from "fake_accel.mem" by bare file name: params[0] is the bias above, and
// a nonzero params[1] keeps m_axis_tvalid low forever (a hung accelerator).
// A beat whose tlast disagrees with the beat count makes that image's class 8'hEE.
module fake_accel #(
    parameter integer LANES = 4,
    parameter integer BEATS = 12,
    parameter integer DELAY = 6,
    parameter integer DEPTH = 3,
    parameter integer OUT_W = 16
) (
    input  wire               clk,
    input  wire               rst,
    input  wire [8*LANES-1:0] s_axis_tdata,
    input  wire               s_axis_tvalid,
    output wire               s_axis_tready,
    input  wire               s_axis_tlast,
    output wire [OUT_W-1:0]   m_axis_tdata,
    output wire               m_axis_tvalid,
    input  wire               m_axis_tready,
    output wire               m_axis_tlast
);
    reg [7:0] params [0:1];
    initial $readmemh("fake_accel.mem", params);

    wire hang = params[1] != 8'h00;

    // Input side: accumulate bytes, count beats, check tlast.
    reg [31:0] beat_sum;
    integer lane;
    always @* begin
        beat_sum = 32'd0;
        for (lane = 0; lane < LANES; lane = lane + 1)
            beat_sum = beat_sum + {24'd0, s_axis_tdata[8*lane +: 8]};
    end

    reg [31:0] acc;
    reg [31:0] beat_cnt;
    reg        frame_err;
    reg [31:0] inflight;

    wire last_beat = beat_cnt == BEATS - 1;
    wire out_fire = m_axis_tvalid && m_axis_tready;
    assign s_axis_tready = (inflight < DEPTH) || out_fire;
    wire in_fire = s_axis_tvalid && s_axis_tready;
    wire push = in_fire && last_beat;

    wire [31:0] total = acc + beat_sum + {24'd0, params[0]};
    wire [31:0] total_mod = total % 32'd10;
    wire bad_last = s_axis_tlast != last_beat;
    wire [7:0] result = (frame_err || bad_last) ? 8'hEE : total_mod[7:0];

    always @(posedge clk) begin
        if (rst) begin
            acc <= 32'd0;
            beat_cnt <= 32'd0;
            frame_err <= 1'b0;
        end else if (in_fire) begin
            if (last_beat) begin
                acc <= 32'd0;
                beat_cnt <= 32'd0;
                frame_err <= 1'b0;
            end else begin
                acc <= acc + beat_sum;
                beat_cnt <= beat_cnt + 32'd1;
                frame_err <= frame_err || bad_last;
            end
        end
    end

    always @(posedge clk) begin
        if (rst)
            inflight <= 32'd0;
        else
            inflight <= inflight + {31'd0, push} - {31'd0, out_fire};
    end

    // Fixed delay line.
    reg       dly_v [0:DELAY-1];
    reg [7:0] dly_d [0:DELAY-1];
    integer s;
    always @(posedge clk) begin
        if (rst) begin
            for (s = 0; s < DELAY; s = s + 1) begin
                dly_v[s] <= 1'b0;
                dly_d[s] <= 8'd0;
            end
        end else begin
            dly_v[0] <= push;
            dly_d[0] <= result;
            for (s = 1; s < DELAY; s = s + 1) begin
                dly_v[s] <= dly_v[s-1];
                dly_d[s] <= dly_d[s-1];
            end
        end
    end

    // Output FIFO; never overflows because inflight <= DEPTH.
    reg [7:0]  fifo [0:DEPTH-1];
    reg [31:0] wr_ptr;
    reg [31:0] rd_ptr;
    reg [31:0] count;
    wire fifo_push = dly_v[DELAY-1];
    always @(posedge clk) begin
        if (rst) begin
            wr_ptr <= 32'd0;
            rd_ptr <= 32'd0;
            count <= 32'd0;
        end else begin
            if (fifo_push) begin
                fifo[wr_ptr] <= dly_d[DELAY-1];
                wr_ptr <= (wr_ptr == DEPTH - 1) ? 32'd0 : wr_ptr + 32'd1;
            end
            if (out_fire)
                rd_ptr <= (rd_ptr == DEPTH - 1) ? 32'd0 : rd_ptr + 32'd1;
            count <= count + {31'd0, fifo_push} - {31'd0, out_fire};
        end
    end

    assign m_axis_tvalid = (count != 32'd0) && !hang;
    assign m_axis_tdata = {{(OUT_W - 8){1'b0}}, fifo[rd_ptr]};
    assign m_axis_tlast = 1'b1;
endmodule
