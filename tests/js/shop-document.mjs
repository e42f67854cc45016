// A fresh role document of the shop (orders, products, users), for the tests of patches.
export function shop() {
  return {
    role: "admin",
    users: [{ id: 1, username: "alice" }, { id: 2, username: "bob" }],
    orders: [
      { id: 10, user: 1, product: 7, quantity: 1, status: "pending" },
      { id: 11, user: 2, product: 8, quantity: 2, status: "paid" },
      { id: 12, user: 1, product: 8, quantity: 1, status: "pending" },
    ],
    products: [{ id: 7, name: "Brush", price: "9.99" }, { id: 8, name: "Easel", price: "49.00" }],
  };
}
