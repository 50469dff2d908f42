// npipe/rpc/rpc.hpp: the whole JSON-RPC 2.0 layer (npipe::rpc, library npipe_rpc).
#pragma once
#include "npipe/rpc/command_handler.hpp"
#include "npipe/rpc/connection.hpp"
#include "npipe/rpc/error.hpp"
#include "npipe/rpc/framing.hpp"
#include "npipe/rpc/handler.hpp"
#include "npipe/rpc/message.hpp"
