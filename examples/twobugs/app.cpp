// A small program that uses twobugs::lazy the way a service would, and crashes in
// production: it plays the part of the nightly job whose sanitizer report you were sent.
//   g++ -std=c++20 -O2 -g -fsanitize=address -fno-omit-frame-pointer -Iinclude app.cpp -o app && ./app
#include <twobugs/lazy.hpp>

#include <cstdio>
#include <vector>

namespace service {

twobugs::lazy<int> price_of(int item) { co_return 10 * item + 1; }

int handle_request(int item) {
    twobugs::lazy<int> job = price_of(item);
    job.start();  // runs to completion
    std::printf("request %d handled\n", item);
    return item;
}  // `job` is destroyed here

}  // namespace service

int main() {
    std::vector<int> items{3, 5, 8};
    int total = 0;
    for (int item : items) total += service::handle_request(item);
    return total == 16 ? 0 : 1;
}
