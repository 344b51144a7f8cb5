#pragma once

// Everything a worker's code needs.
#include "sluice/channel_consumer.h"
#include "sluice/consumer.h"
#include "sluice/event.h"
#include "sluice/http_consumer.h"
#include "sluice/json_consumer.h"
#include "sluice/layer.h"
#include "sluice/lifespan.h"
#include "sluice/middleware.h"
#include "sluice/router.h"
#include "sluice/run_worker.h"
#include "sluice/sync.h"
#include "sluice/sync_consumer.h"
#include "sluice/websocket_consumer.h"
