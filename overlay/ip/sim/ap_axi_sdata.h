#ifndef VITCOD_SIM_AP_AXI_SDATA_H_
#define VITCOD_SIM_AP_AXI_SDATA_H_

// C-SIMULATION ONLY stand-in for Xilinx's <ap_axi_sdata.h>, which hls4ml's bundled ap_types lack.
// overlay/ip/sim/ is on the include path of the g++ C-simulation build only (tests, vitcod_top_tb);
// the Vitis HLS flow (overlay/tcl/build_ip.tcl) never adds it, so synthesis and Vitis's own C
// simulation use the real header. The guard below makes an accidental use under synthesis fail.
//
// Models only what the overlay uses of ap_axiu<D, 0, 0, 0>: data, keep, strb, last (with zero-width
// side channels the real type has no user/id/dest members either).

#ifdef __SYNTHESIS__
#error "overlay/ip/sim/ap_axi_sdata.h is a C-simulation shim; synthesis must use Vitis HLS's own ap_axi_sdata.h"
#endif

#include "ap_int.h"

template <int D, int U, int TI, int TD> struct ap_axiu {
    static_assert(U == 0 && TI == 0 && TD == 0, "the simulation shim models side-channel-free words only");
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<1> last;
};

#endif
