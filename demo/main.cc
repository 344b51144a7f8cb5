#include "demo/demo_app.h"
#include "sluice/run_worker.h"

int main(int argc, char** argv) {
  auto app = sluice::demo::MakeApp();
  return sluice::RunWorker(*app, argc, argv, sluice::demo::MakeLifespan());
}
