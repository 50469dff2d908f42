// npipe/npipe.hpp: everything in the synchronous npipe API.
#pragma once

#include "npipe/anonymous_pipe.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/options.hpp"
#include "npipe/pipe_name.hpp"
#include "npipe/pipe_stream.hpp"
#include "npipe/printable.hpp"
#include "npipe/process.hpp"
#include "npipe/relay.hpp"
