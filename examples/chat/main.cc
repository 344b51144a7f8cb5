#include "chat.h"

int main(int argc, char** argv) {
  auto app = chat::MakeApp();
  return sluice::RunWorker(*app, argc, argv);
}
